"""Test fixtures: one migrated database per run, emptied after each test.

SQLite (a temp file) by default; PostgreSQL when IDP_TEST_DATABASE_URL is set,
in a database created for this run and dropped at its end, so runs never see
each other's rows.
"""

from __future__ import annotations

import contextvars
import os
import re
import secrets
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import psycopg
import pytest
from alembic import command
from flask.testing import FlaskClient
from sqlalchemy import text

from idp import create_app
from idp.cli.db import alembic_config
from idp.config import Settings
from idp.extensions import db
from idp.models import Base
from tests import audit_guard

PG_URL = os.environ.get("IDP_TEST_DATABASE_URL")

TEST_SETTINGS = {
    "environment": "test",
    "issuer": "http://localhost",
    "argon2_time_cost": 1,
    "argon2_memory_cost": 1024,
    "argon2_parallelism": 1,
    "key_publish_delay": 3600,
    "log_level": "WARNING",
    # Queued messages (back-channel logout tokens) are delivered at the end of
    # the request that queued them, after its transaction has ended, so a test
    # sees them delivered when the request returns. Messages queued outside a
    # request (a service called from the test) wait for ``flush_outbox()``.
    "outbox_delivery": "inline",
}


def pytest_configure(config):
    os.environ.pop("IDP_DATABASE_URL", None)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if not PG_URL:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'idp.sqlite3'}"
        return
    name = f"machi_test_{secrets.token_hex(6)}"
    parts = urlsplit(PG_URL)
    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def migrated(database_url):
    settings = Settings.load({**TEST_SETTINGS, "database_url": database_url})
    command.upgrade(alembic_config(settings.sqlalchemy_url), "head")
    return database_url


@pytest.fixture
def settings_overrides():
    """Override in a module or test to change settings for its app."""
    return {}


@pytest.fixture
def app(migrated, settings_overrides, tmp_path):
    app = create_app({**TEST_SETTINGS, "database_url": migrated,
                      "outbox_dir": str(tmp_path / "outbox"), **settings_overrides})
    with app.app_context():
        yield app
        db.session.remove()
        # The audit trail refuses DELETE (idp.audit.guard): lift the guard for the cleanup.
        with db.engine.begin() as conn, audit_guard.lifted(conn):
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        db.engine.dispose()


class IsolatedClient(FlaskClient):
    """A test client whose requests run outside the test's app context.

    The ``app`` fixture keeps an app context pushed so tests can use the
    database directly; Flask would reuse it (and its ``g``) for every request,
    which no real request does. Each request here starts from an empty
    ``contextvars.Context`` instead. The test's own session ends its
    transaction first (tests commit what a request must see), which also
    releases SQLite's write lock (``idp.db`` begins transactions IMMEDIATE),
    and afterwards it reads what the request committed.
    """

    def open(self, *args, **kwargs):
        db.session.rollback()
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def is_postgres():
    return bool(PG_URL)


def flush_outbox() -> list[dict]:
    """Deliver every due outbox message now (``idp.outbox.service.deliver_due``), as
    ``idp worker --once`` would: the test's transaction ends first."""
    from idp.outbox import service as outbox

    db.session.commit()
    results = []
    while batch := outbox.deliver_due():
        results.extend(batch)
    return results


def count(model) -> int:
    return db.session.scalar(text(f"SELECT count(*) FROM {model.__tablename__}"))  # noqa: S608
