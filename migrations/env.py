"""Alembic environment: Machi ID's metadata, the URL from Machi ID's settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config
from sqlalchemy import pool

from idp.config import Settings
from idp.db import install_sqlite_handling
from idp.models import Base

config = context.config
target_metadata = Base.metadata
# Migrations run with the app's SQLite pragmas and BEGIN IMMEDIATE, also when
# no app was created first (``idp db upgrade`` creates one; the tests do not).
install_sqlite_handling()


def _url() -> str:
    return config.attributes.get("url") or Settings.load().sqlalchemy_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = engine_from_config({"sqlalchemy.url": _url()}, prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)


def _run(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things in place.
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
