"""The tamper-evident audit trail: hash chain, database guard, verification, concurrency.

Tampering is simulated the way an intruder with DDL rights would do it: the
append-only triggers are dropped for the transaction (``tests.helpers.audit_guard.
lifted``), a row is changed with raw SQL, and the triggers are put back.
The chain must then name the first broken link.
"""

from __future__ import annotations

import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from idp import create_app
from idp.audit import chain
from idp.audit import guard
from idp.audit.models import AuditChainHead
from idp.audit.models import AuditEvent
from idp.audit.service import deidentify_resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.cli.db import alembic_config
from idp.config import Settings
from idp.extensions import db
from idp.privacy.deletion import delete_resident
from tests import factories
from tests.helpers.app import PG_URL
from tests.helpers.app import TEST_SETTINGS
from tests.helpers.audit_guard import lifted
from tests.helpers.oauth import tokens_for

MIGRATION = "5926268e5fd0"

# Tampering goes through a connection of its own (db.engine.begin(), the guard lifted on
# it), and two tests append from worker threads: real commits, not a rolled-back transaction.
pytestmark = pytest.mark.commits


def write_events(n: int = 5) -> list[AuditEvent]:
    written = [record(AuditTag.COMPANY_CREATE, actor="test", company_id=f"co_{i:012d}",
                      name=f"会社{i}") for i in range(n)]
    db.session.commit()
    # As stored (record() hands back the event it chained, not an ORM row).
    return list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.seq.in_([e.seq for e in written])).order_by(AuditEvent.seq)))


def verify(**kwargs) -> chain.Verification:
    db.session.rollback()
    return chain.verify(db.session, **kwargs)


def tamper(sql: str, **params) -> None:
    """Run raw SQL on audit rows with the guard lifted, as an intruder could."""
    db.session.rollback()
    with db.engine.begin() as conn, lifted(conn):
        conn.execute(text(sql), params)


# ---- the chain ---------------------------------------------------------------------------

def test_each_event_carries_the_digest_of_the_one_before(app):
    """Test that seq counts up from 1 and prev_digest is the previous event's digest."""
    write_events(4)
    rows = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    assert rows[0].prev_digest == chain.GENESIS
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_digest == before.digest
    head = db.session.get(AuditChainHead, 1)
    assert (head.seq, head.digest) == (4, rows[-1].digest)


def test_intact_chain_verifies(app):
    """Test that verify() recomputes every digest and reports the head."""
    written = write_events(6)
    result = verify()
    assert result.ok and result.events == 6
    assert (result.head_seq, result.head_digest) == (6, written[-1].digest)


def test_one_commit_with_several_events_chains_them_in_order(client):
    """Test that a whole code flow (many events per request) leaves one intact chain."""
    factories.resident()
    rp = factories.rp()
    tokens_for(client, rp, "openid email")
    result = verify()
    assert result.ok and result.events >= 6


def test_rolled_back_events_are_not_chained(app):
    """Test that events of a rolled-back transaction (or savepoint) leave no trace or gap."""
    write_events(2)
    record(AuditTag.COMPANY_CREATE, actor="test", name="gone")
    db.session.rollback()
    with db.session.begin_nested():
        record(AuditTag.COMPANY_CREATE, actor="test", name="kept")
    nested = db.session.begin_nested()
    record(AuditTag.COMPANY_CREATE, actor="test", name="savepoint rolled back")
    nested.rollback()
    db.session.commit()
    names = [e.data.get("name") for e in db.session.scalars(
        select(AuditEvent).order_by(AuditEvent.seq))]
    assert names == ["会社0", "会社1", "kept"]
    assert verify().ok


# ---- tampering is detected -------------------------------------------------------------------

def test_a_row_edited_in_the_database_breaks_the_chain_there(app):
    """Test that changing one event's data with raw SQL is named as the first broken link."""
    written = write_events(5)
    tamper("UPDATE audit_events SET data = :data WHERE seq = 3",
           data=json.dumps({"name": "偽の会社"}))
    result = verify()
    assert not result.ok
    assert (result.first_break.seq, result.first_break.event_id) == (3, written[2].id)
    assert "content does not match" in result.first_break.reason
    assert result.events == 2


def test_a_changed_resident_id_is_detected(app):
    """Test that the personal columns are covered too (through personal_digest)."""
    record(AuditTag.LOGIN_SUCCESS, resident_id="AAAAAAAAAAAAAAAA")
    db.session.commit()
    tamper("UPDATE audit_events SET resident_id = 'BBBBBBBBBBBBBBBB' WHERE seq = 1")
    result = verify()
    assert result.first_break.seq == 1
    assert "resident_id, ip or user_agent" in result.first_break.reason


def test_a_deleted_row_is_detected(app):
    """Test that removing an event in the middle names the gap."""
    write_events(5)
    tamper("DELETE FROM audit_events WHERE seq = 2")
    result = verify()
    assert result.first_break.seq == 3
    assert result.first_break.reason == "events 2 to 2 are missing"


def test_rows_removed_from_the_end_are_detected_by_the_head(app):
    """Test that deleting the newest events is caught: the head still names them."""
    write_events(5)
    tamper("DELETE FROM audit_events WHERE seq >= 4")
    result = verify()
    assert not result.ok
    assert "removed from the end" in result.first_break.reason


def test_a_rebuilt_chain_is_caught_by_a_recorded_anchor(app):
    """Test that recomputing every digest after an edit fools verify() alone, but not an anchor
    written down before."""
    write_events(4)
    anchor = (verify().head_seq, verify().head_digest)
    tamper("UPDATE audit_events SET data = :data WHERE seq = 2", data=json.dumps({"name": "X"}))
    _rebuild_chain()
    assert verify().ok  # the forger recomputed everything …
    result = verify(anchors=[anchor])
    assert not result.ok  # … but the anchor kept outside tells
    assert result.first_break.seq == 4
    assert result.anchors == [{"seq": 4, "ok": False}]


def _rebuild_chain() -> None:
    db.session.rollback()
    with db.engine.begin() as conn, lifted(conn):
        rows = conn.execute(select(*AuditEvent.__table__.c).order_by(AuditEvent.seq)).all()
        prev = chain.GENESIS
        for row in rows:
            digest = chain.event_digest(prev, row)
            conn.execute(AuditEvent.__table__.update().where(AuditEvent.id == row.id)
                         .values(prev_digest=prev, digest=digest))
            prev = digest
        conn.execute(AuditChainHead.__table__.update().values(digest=prev))


def test_an_anchor_beyond_the_chain_fails(app):
    """Test that an anchor naming an event that does not exist is a failure."""
    write_events(2)
    result = verify(anchors=[(9, "a" * 64)])
    assert not result.ok and "does not have" in result.first_break.reason


def test_unaccounted_redaction_is_detected(app):
    """Test that clearing a row's personal columns outside an account deletion is flagged."""
    record(AuditTag.LOGIN_SUCCESS, resident_id="AAAAAAAAAAAAAAAA")
    db.session.commit()
    db.session.execute(text("UPDATE audit_events SET resident_id = NULL, ip = NULL, "
                            "user_agent = NULL, personal_salt = NULL"))
    db.session.commit()
    result = verify()
    assert not result.ok
    assert "account deletions account for only 0" in result.first_break.reason


def test_account_deletion_redacts_and_the_chain_holds(client):
    """Test that the resident's account deletion (issue 5) de-identifies rows, the triggers
    allow it, and the chain still verifies with every redaction accounted for."""
    resident = factories.resident()
    rp = factories.rp()
    tokens_for(client, rp, "openid email")
    with client.application.test_request_context():
        delete_resident(db.session.merge(resident), factories.PASSWORD)
        db.session.commit()
    result = verify()
    assert result.ok, result.first_break
    assert result.redacted > 0 and result.redacted == result.redactions_accounted
    assert db.session.scalar(select(AuditEvent).where(
        AuditEvent.resident_id == resident.id)) is None


def test_deidentify_scrubs_events_not_yet_committed(app):
    """Test that events of the deleting transaction are written without the resident."""
    record(AuditTag.LOGIN_SUCCESS, resident_id="CCCCCCCCCCCCCCCC")
    deidentify_resident("CCCCCCCCCCCCCCCC")
    db.session.commit()
    (event,) = db.session.scalars(select(AuditEvent))
    assert event.resident_id is None and event.personal_salt is not None
    assert verify().ok


# ---- the database guard ------------------------------------------------------------------------

def _refused(sql: str, **params) -> bool:
    db.session.rollback()
    try:
        with db.engine.begin() as conn:
            conn.execute(text(sql), params)
    except DBAPIError as exc:
        return "append-only" in str(exc) or "only moves forward" in str(exc)
    return False


def test_triggers_refuse_update_and_delete(app):
    """Test that raw UPDATE and DELETE on audit_events are refused by the database."""
    write_events(2)
    assert _refused("UPDATE audit_events SET tag = 'company:delete' WHERE seq = 1")
    assert _refused("UPDATE audit_events SET resident_id = NULL, tag = 'x' WHERE seq = 1")
    assert _refused("DELETE FROM audit_events WHERE seq = 2")
    assert _refused("DELETE FROM audit_chain_head")
    assert _refused("UPDATE audit_chain_head SET seq = 1")
    db.session.rollback()
    assert [e.tag for e in db.session.scalars(select(AuditEvent))] == ["company:create"] * 2
    assert verify().ok


def test_truncate_is_refused_on_postgresql(app, is_postgres):
    """Test that TRUNCATE, which skips row triggers, has its own refusal."""
    if not is_postgres:
        pytest.skip("SQLite has no TRUNCATE")
    write_events(1)
    assert _refused("TRUNCATE audit_events")


def test_guard_is_installed_by_the_migration(app):
    """Test that the migrated database has every trigger, and that the guard module's SQL
    is what the migration ran (SQLite keeps the statement text)."""
    db.session.rollback()
    with db.engine.connect() as conn:
        assert guard.installed(conn)
        if conn.dialect.name == "sqlite":
            stored = set(conn.scalars(text(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger'")))
            assert set(guard.SQLITE_CREATE) <= stored
        else:
            bodies = set(conn.scalars(text(
                "SELECT prosrc FROM pg_proc WHERE proname IN "
                "('audit_events_append_only', 'audit_chain_head_forward')")))
            expected = {s.split("$$")[1] for s in guard.POSTGRESQL_CREATE if "$$" in s}
            assert bodies == expected
    with db.engine.begin() as conn, lifted(conn):
        assert not guard.installed(conn)


# ---- concurrency ----------------------------------------------------------------------------------

def test_parallel_appends_never_fork_the_chain(app, migrated):
    """Test that 20 transactions committing events at the same moment all succeed and leave
    one chain without gaps or forks (PostgreSQL: the head row lock; SQLite: BEGIN IMMEDIATE)."""
    write_events(1)
    db.session.rollback()
    n = 20
    barrier = threading.Barrier(n)
    worker_app = create_app({**TEST_SETTINGS, "database_url": migrated})

    def append(i: int) -> None:
        with worker_app.app_context():
            record(AuditTag.COMPANY_CREATE, actor="test", name=f"parallel {i}")
            record(AuditTag.CLIENT_CREATE, actor="test", name=f"parallel {i}")
            barrier.wait()
            db.session.commit()

    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(append, range(n)))
    finally:
        with worker_app.app_context():
            db.engine.dispose()
    rows = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [r.seq for r in rows] == list(range(1, 2 * n + 2))
    assert len({r.prev_digest for r in rows}) == len(rows)  # no two events on one parent
    # The two events of one transaction are neighbours in the chain.
    for i in range(n):
        pair = [r.seq for r in rows if r.data.get("name") == f"parallel {i}"]
        assert pair[1] == pair[0] + 1
    assert verify().ok


def test_parallel_single_event_appends_never_fork_the_chain(app, migrated):
    """Test that 20 transactions of one event each (the hot paths' case, one statement on
    PostgreSQL) committing at once leave one verified chain without gaps or forks."""
    write_events(1)
    db.session.rollback()
    n = 20
    barrier = threading.Barrier(n)
    worker_app = create_app({**TEST_SETTINGS, "database_url": migrated})

    def append(i: int) -> None:
        with worker_app.app_context():
            record(AuditTag.TOKEN_ISSUE, client_id=f"mc_{i:020d}", data={"seq": -1, "i": i})
            barrier.wait()
            db.session.commit()

    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(append, range(n)))
    finally:
        with worker_app.app_context():
            db.engine.dispose()
    rows = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [r.seq for r in rows] == list(range(1, n + 2))
    assert [r.prev_digest for r in rows[1:]] == [r.digest for r in rows[:-1]]
    assert verify().ok


def test_single_event_digest_matches_python(app):
    """Test that an event appended alone (PostgreSQL hashes it in SQL) carries the digest
    verify() computes, also with non-ASCII data and a nested "seq" key in its data."""
    write_events(1)
    event = record(AuditTag.COMPANY_CREATE, actor="test", name="札幌の会社 \"seq\"",
                   nested={"seq": -7340032991, "tag": "x"})
    db.session.commit()
    stored = db.session.scalar(select(AuditEvent).where(AuditEvent.seq == event.seq))
    assert stored.digest == chain.event_digest(stored.prev_digest, stored) == event.digest
    assert verify().ok


# ---- the migration chains an existing trail ----------------------------------------------------------

@pytest.fixture
def scratch_url(tmp_path):
    """An empty database of its own (SQLite file, or a PostgreSQL database made for the test)."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'scratch.sqlite3'}"
        return
    name = f"machi_scratch_{secrets.token_hex(4)}"
    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_migration_chains_events_written_before_it(scratch_url):
    """Test that upgrading a database that already has audit events chains them in id order,
    so the trail verifies from its first event."""
    settings = Settings.load({**TEST_SETTINGS, "database_url": scratch_url})
    config = alembic_config(settings.sqlalchemy_url)
    previous = ScriptDirectory.from_config(config).get_revision(MIGRATION).down_revision
    command.upgrade(config, previous)
    engine = create_engine(settings.sqlalchemy_url)
    with engine.begin() as conn:
        for i, (tag, resident) in enumerate([("company:create", None),
                                             ("resident:login:success", "RRRRRRRRRRRRRRRR"),
                                             ("consent:grant", "RRRRRRRRRRRRRRRR")]):
            conn.execute(text(
                "INSERT INTO audit_events (tag, at, actor, resident_id, client_id, company_id, "
                "ip, user_agent, data) VALUES (:tag, :at, NULL, :resident, NULL, 'co_X', "
                "'203.0.113.9', 'UA', :data)"),
                {"tag": tag, "at": f"2026-11-0{i + 1} 09:00:00.123456", "resident": resident,
                 "data": json.dumps({"n": i, "名前": "花子"}, ensure_ascii=False)})
    engine.dispose()
    command.upgrade(config, "head")
    app = create_app({**TEST_SETTINGS, "database_url": scratch_url})
    with app.app_context():
        result = chain.verify(db.session)
        assert result.ok, result.first_break
        assert result.events == 3
        record(AuditTag.COMPANY_CREATE, actor="test", name="after the migration")
        db.session.commit()
        assert chain.verify(db.session).events == 4
        assert guard.installed(db.session.connection())
        db.session.remove()
        db.engine.dispose()
