"""Pooled PostgreSQL connections are pinged at checkout only after sitting idle
(idp.db.ping_idle_connections): no round trip per request on a busy worker."""

from __future__ import annotations

import os

import psycopg
import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import text

from idp import db as database

PG_URL = os.environ.get("IDP_TEST_DATABASE_URL")
pg_only = pytest.mark.skipif(not (PG_URL or "").startswith("postgresql"),
                             reason="the ping is PostgreSQL's (set IDP_TEST_DATABASE_URL)")


def _engine_with_counted_pings():
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    database.ping_idle_connections(engine)
    pings = []
    original = engine.dialect.do_ping

    def counting(dbapi_connection):
        pings.append(1)
        return original(dbapi_connection)

    engine.dialect.do_ping = counting
    return engine, pings


@pg_only
def test_a_connection_in_steady_use_is_not_pinged():
    engine, pings = _engine_with_counted_pings()
    try:
        with freeze_time("2026-12-03 12:00:00", tick=False):
            for _ in range(5):
                with engine.connect() as conn:
                    assert conn.execute(text("SELECT 1")).scalar() == 1
        assert pings == []
    finally:
        engine.dispose()


@pg_only
def test_a_connection_idle_in_the_pool_is_pinged_once_at_checkout():
    engine, pings = _engine_with_counted_pings()
    try:
        with freeze_time("2026-12-03 12:00:00") as clock:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            clock.tick(database.PING_AFTER_IDLE_S + 0.5)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
            assert pings == [1]
            with engine.connect() as conn:  # used a moment ago: not again
                conn.execute(text("SELECT 1"))
            assert pings == [1]
    finally:
        engine.dispose()


@pg_only
def test_an_idle_connection_the_server_dropped_is_replaced_at_checkout():
    engine, pings = _engine_with_counted_pings()
    try:
        with freeze_time("2026-12-03 12:00:00") as clock:
            with engine.connect() as conn:
                pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            # The server ends the pooled connection while it sits idle (a restart, a failover).
            with psycopg.connect(PG_URL, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            clock.tick(database.PING_AFTER_IDLE_S + 0.5)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
            assert pings
    finally:
        engine.dispose()


def test_sqlite_engines_get_no_listener():
    engine = create_engine("sqlite://")
    database.ping_idle_connections(engine)
    assert not event.contains(engine.pool, "checkout", lambda *a: None)
    assert not engine.pool.dispatch.checkout
