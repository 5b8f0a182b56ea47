"""Test fixtures: one migrated database per run (per xdist worker), each test in a transaction.

SQLite (a temp file) by default; PostgreSQL when IDP_TEST_DATABASE_URL is set, in a
database created for this run (and worker) and dropped at its end, so runs never see
each other's rows.

Isolation (Warehouse's tests/conftest.py, SQLAlchemy 2): the app for a set of settings
is built once per run; for each test a connection begins an outer transaction, and
``db.session`` becomes a session on that connection with
``join_transaction_mode="create_savepoint"``: what the test or a request commits only
releases a SAVEPOINT (the next use opens a new one), and the outer transaction is rolled
back at the end of the test, so every test starts from the empty tables the previous one
found. A test that needs real commits seen by other connections (live servers in
threads or subprocesses, its own engine, concurrency) asks for ``migrated`` (the
database URL) or is marked ``commits``; it gets a fresh app and the tables are emptied
after it, as before (every test under tests/e2e is such a test). A test that changes the
app's setup (adds routes or hooks) is marked ``own_app``: a fresh app, same transaction.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import psycopg
import pytest
from alembic import command
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import create_engine

import idp
from idp import create_app
from idp.cli.db import alembic_config
from idp.clients import cache as client_cache
from idp.config import Settings
from idp.extensions import db
from idp.extensions import limiter
from idp.keys import service as keys
from idp.models import Base
from idp.oauth import ratelimit as token_rate_limit
from tests.helpers import audit_guard
from tests.helpers.app import PG_URL
from tests.helpers.app import TEST_SETTINGS
from tests.helpers.app import IsolatedClient
from tests.helpers.cli import run


def pytest_configure(config):
    os.environ.pop("IDP_DATABASE_URL", None)
    config.addinivalue_line(
        "markers", "commits: real commits seen by other connections (fresh app, tables emptied "
                   "after the test) instead of the per-test rolled-back transaction")
    config.addinivalue_line(
        "markers", "own_app: the test changes the app's setup (routes, hooks): an app of its "
                   "own instead of the run's shared one, still in a rolled-back transaction")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if not PG_URL:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'idp.sqlite3'}"
        return
    name = f"machi_test_{_worker()}_{secrets.token_hex(6)}"
    parts = urlsplit(PG_URL)
    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _empty_tables(connection) -> None:
    # The audit trail refuses DELETE (idp.audit.guard): lift the guard for the cleanup.
    with audit_guard.lifted(connection):
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(scope="session")
def schema(database_url):
    """The database URL, migrated to head and emptied of anything the migrations seeded."""
    settings = Settings.load({**TEST_SETTINGS, "database_url": database_url})
    command.upgrade(alembic_config(settings.sqlalchemy_url), "head")
    engine = create_engine(settings.sqlalchemy_url)
    with engine.begin() as connection:
        _empty_tables(connection)
    engine.dispose()
    return database_url


@pytest.fixture(scope="session")
def migrated(schema):
    """The test database's URL, for a test that connects on its own (and so gets real commits)."""
    return schema


@pytest.fixture
def settings_overrides():
    """Override in a module or test to change settings for its app."""
    return {}


def _needs_commits(request) -> bool:
    """Asking for the URL means connecting on one's own: that connection must see commits."""
    return "migrated" in request.fixturenames or request.node.get_closest_marker("commits")


class ConnectionSession(FlaskSession):
    """Flask-SQLAlchemy's session, on the test's connection instead of the app's engine."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return bind if bind is not None else self.bind


@dataclasses.dataclass
class _Built:
    app: object
    settings: Settings
    config: dict
    limiter_state: dict


@pytest.fixture(scope="session")
def _apps():
    """Apps built during the run, one per set of settings overrides."""
    built: dict[str, _Built] = {}
    yield built
    for entry in built.values():
        with entry.app.app_context():
            db.engine.dispose()


def _shared_app(apps: dict, url: str, overrides: dict, outbox_dir):
    """The run's app for these overrides, built on first use, reset to how it was built."""
    key = repr(sorted(overrides.items()))
    if key not in apps:
        app = create_app({**TEST_SETTINGS, "database_url": url, **overrides})
        # The limiter is one object; init_app pointed it at this app's storage.
        apps[key] = _Built(app, app.extensions["idp.settings"], dict(app.config),
                           dict(vars(limiter)))
    built = apps[key]
    app = built.app
    # As built, whatever the previous test changed: settings, config, rate-limit counters.
    settings = built.settings
    if "outbox_dir" not in overrides:
        settings = dataclasses.replace(settings, outbox_dir=str(outbox_dir))
    app.extensions["idp.settings"] = settings
    app.config.clear()
    app.config.update(built.config)
    vars(limiter).update(built.limiter_state)
    limiter.reset()
    token_rate_limit.forget()  # the token endpoint's counts not yet settled
    # The app's JWKS document (cached a few seconds) may name keys the last test rolled back.
    keys.forget_jwks_cache()
    client_cache.forget_all()  # clients the last test rolled back
    return app


@pytest.fixture
def app(request, schema, settings_overrides, tmp_path, _apps):
    """The app, its context pushed, and db.session in a transaction rolled back afterwards."""
    if _needs_commits(request):
        yield from _committed_app(schema, settings_overrides, tmp_path)
        return
    own = bool(request.node.get_closest_marker("own_app"))
    if own:
        app = create_app({**TEST_SETTINGS, "database_url": schema,
                          "outbox_dir": str(tmp_path / "outbox"), **settings_overrides})
    else:
        app = _shared_app(_apps, schema, settings_overrides, tmp_path / "outbox")
    with app.app_context():
        _settle_listener(app)
        connection = db.engine.connect()
        outer = connection.begin()
        app_session = db.session
        db.session = db._make_scoped_session({
            "class_": ConnectionSession,
            "bind": connection,
            "join_transaction_mode": "create_savepoint",
        })
        try:
            yield app
        finally:
            db.session.remove()
            db.session = app_session
            outer.rollback()
            connection.close()
            if own:
                client_cache.stop_listener(app)
                db.engine.dispose()


def _settle_listener(app) -> None:
    """PostgreSQL: the revocation epoch listener empties the client cache once when it
    starts listening (bumps nobody heard while it was away). Start it before the test and
    let that happen, so it never lands inside one: a statement count saw the client read
    a second time when the test's first request had started the listener."""
    cache = client_cache.cache_of(app)
    cache.ensure_listener()
    if cache.listener is not None:
        assert cache.listener.listening.wait(30), "the revocation epoch listener never listened"


def _committed_app(url, overrides, tmp_path):
    app = create_app({**TEST_SETTINGS, "database_url": url,
                      "outbox_dir": str(tmp_path / "outbox"), **overrides})
    with app.app_context():
        _settle_listener(app)
        yield app
        db.session.remove()
        client_cache.stop_listener(app)
        with db.engine.begin() as connection:
            _empty_tables(connection)
        db.engine.dispose()


@pytest.fixture
def client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def is_postgres():
    return bool(PG_URL)


@pytest.fixture
def built_apps(monkeypatch):
    """Record the apps the commands build, and close their connection pools afterwards."""
    apps = []
    real = idp.create_app

    def recording(*args, **kwargs):
        app = real(*args, **kwargs)
        apps.append(app)
        return app

    monkeypatch.setattr(idp, "create_app", recording)
    yield apps
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def cli(app, migrated, built_apps):
    """`idp ARGS...` against the test database; the test's transaction ends first."""

    def invoke(*args: str):
        db.session.commit()
        result = run(migrated, *args)
        db.session.expire_all()
        return result

    return invoke
