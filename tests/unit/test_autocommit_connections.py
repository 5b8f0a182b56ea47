"""Statements that run alone on PostgreSQL use connections kept open in autocommit
(idp.db.AutocommitConnections): no pool checkout, no isolation switch and no reset per
statement, and nothing carried from one statement to the next."""

from __future__ import annotations

import os

import psycopg
import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import exc
from sqlalchemy import text
from sqlalchemy.orm import Session

from idp import db as database

PG_URL = os.environ.get("IDP_TEST_DATABASE_URL")
pg_only = pytest.mark.skipif(not (PG_URL or "").startswith("postgresql"),
                             reason="kept connections are PostgreSQL's "
                                    "(set IDP_TEST_DATABASE_URL)")
PID = text("SELECT pg_backend_pid()")
# In a statement that is its own transaction, the transaction began with the statement.
ALONE = text("SELECT pg_backend_pid() AS pid, now() = statement_timestamp() AS alone")


@pytest.fixture
def engine():
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                           pool_size=2)
    checkouts = []
    event.listen(engine, "checkout", lambda *args: checkouts.append(1))
    engine.checkouts = checkouts
    yield engine
    engine.dispose()


def alive(pid: int) -> bool:
    with psycopg.connect(PG_URL, autocommit=True) as other:
        return other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                             (pid,)).fetchone()[0] == 1


@pg_only
def test_statements_run_alone_share_one_connection_each_its_own_transaction(engine):
    """Test that five statements run alone one after another take the pool's connection
    once and run on it in autocommit, each a transaction of its own."""
    rows = [database.run_alone(Session(engine), ALONE, {}) for _ in range(5)]
    assert {row.pid for row in rows} == {rows[0].pid}
    assert all(row.alone for row in rows)
    assert len(engine.checkouts) == 1


@pg_only
def test_a_write_run_alone_is_committed_at_once(engine):
    """Test that a row written alone is there for another connection as soon as the
    statement returns."""
    with engine.begin() as setup:
        setup.execute(text("CREATE TABLE IF NOT EXISTS kept_alone (n int)"))
        setup.execute(text("DELETE FROM kept_alone"))
    try:
        database.run_alone(Session(engine), text("INSERT INTO kept_alone VALUES (7) "
                                                 "RETURNING n"), {})
        with psycopg.connect(PG_URL) as other:
            assert other.execute("SELECT n FROM kept_alone").fetchall() == [(7,)]
    finally:
        with engine.begin() as cleanup:
            cleanup.execute(text("DROP TABLE kept_alone"))


@pg_only
def test_a_connection_whose_statement_failed_is_not_kept(engine):
    """Test that a failed statement's connection goes back to the pool (which resets it)
    rather than to the kept ones, and the next statement is checked out afresh and runs
    alone."""
    database.run_alone(Session(engine), PID, {})
    with pytest.raises(exc.DBAPIError):
        database.run_alone(Session(engine), text("SELECT 1 / 0"), {})
    assert database.AutocommitConnections.of(engine)._idle == []
    assert database.run_alone(Session(engine), ALONE, {}).alone
    assert len(engine.checkouts) == 2


@pg_only
def test_a_kept_connection_the_server_dropped_while_idle_is_replaced(engine):
    """Test that a kept connection idle longer than PING_AFTER_IDLE_S is pinged before it is
    used, and one the server ended (a restart, a failover) is replaced, not failed."""
    with freeze_time("2026-12-04 12:00:00") as clock:
        first = database.run_alone(Session(engine), PID, {})[0]
        with psycopg.connect(PG_URL, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (first,))
        clock.tick(database.PING_AFTER_IDLE_S + 0.5)
        assert database.run_alone(Session(engine), PID, {})[0] != first


@pg_only
def test_at_most_half_the_pool_is_kept_and_disposing_closes_them(engine):
    """Test that three statements at once keep one connection afterwards (half the pool's
    size of 2) and give the others back to the pool, and that disposing of the engine
    closes them all."""
    kept = database.AutocommitConnections.of(engine)
    with kept.connection() as a, kept.connection() as b, kept.connection() as c:
        pids = [conn.execute(PID).scalar() for conn in (a, b, c)]
    assert len(set(pids)) == 3
    assert len(kept._idle) == 1 and engine.pool.checkedin() == 2
    engine.dispose()
    assert kept._idle == []
    assert not any(alive(pid) for pid in pids)


def test_sqlite_runs_alone_in_the_sessions_transaction(tmp_path):
    """Test that on SQLite a statement run alone joins the session's transaction (every
    transaction there begins IMMEDIATE: a kept connection would hold the write lock)."""
    sqlite = create_engine(f"sqlite:///{tmp_path / 'alone.sqlite3'}")
    try:
        session = Session(sqlite)
        assert database.run_alone(session, text("SELECT 1"), {})[0] == 1
        assert session.in_transaction()
        session.close()
        assert not hasattr(sqlite, database.AutocommitConnections._ATTRIBUTE)
    finally:
        sqlite.dispose()


def test_sqlite_connections_are_wal_with_normal_sync(tmp_path):
    """Test the SQLite connection settings (idp.db.install_sqlite_handling): foreign keys on,
    WAL, and synchronous=NORMAL (1), WAL's recommended durability (not FULL, 2: an fsync
    per commit, under the one write lock)."""
    database.install_sqlite_handling()
    sqlite = create_engine(f"sqlite:///{tmp_path / 'settings.sqlite3'}")
    try:
        with sqlite.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        sqlite.dispose()
