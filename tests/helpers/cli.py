"""The `idp` command run in-process through click's CliRunner, as an operator would run it.

Each command builds its own app from IDP_* variables (here: the test database's URL).
"""

from __future__ import annotations

from click.testing import CliRunner

from idp.cli import main

BASE_ENV = {
    "IDP_ENVIRONMENT": "test",
    "IDP_ISSUER": "http://localhost",
    "IDP_LOG_LEVEL": "WARNING",
    "IDP_ARGON2_TIME_COST": "1",
    "IDP_ARGON2_MEMORY_COST": "1024",
    "IDP_ARGON2_PARALLELISM": "1",
    "IDP_KEY_PUBLISH_DELAY": "3600",
}


def run(database_url: str, *args: str):
    return CliRunner().invoke(main, list(args), env={**BASE_ENV,
                                                     "IDP_DATABASE_URL": database_url})
