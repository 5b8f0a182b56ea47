"""The tamper-evident audit trail: appending, sealing, signed heads, database guard,
verification, concurrency.

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
from joserfc import jws
from joserfc.jwk import ECKey
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from idp import create_app
from idp.audit import chain
from idp.audit import guard
from idp.audit.models import AuditEvent
from idp.audit.models import AuditHead
from idp.audit.service import deidentify_resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.cli.audit import seal_pending
from idp.cli.db import alembic_config
from idp.config import Settings
from idp.db import utcnow
from idp.extensions import db
from idp.keys import audit_heads
from idp.privacy.deletion import delete_resident
from tests import factories
from tests.helpers.app import PG_URL
from tests.helpers.app import TEST_SETTINGS
from tests.helpers.audit import seal_all
from tests.helpers.audit import seal_in_batches
from tests.helpers.audit_guard import lifted
from tests.helpers.oauth import tokens_for

MIGRATION = "5926268e5fd0"
SEALING_MIGRATION = "7c1e5a9d3f20"

# Tampering goes through a connection of its own (db.engine.begin(), the guard lifted on
# it), and two tests append from worker threads: real commits, not a rolled-back transaction.
pytestmark = pytest.mark.commits


def append_events(n: int = 5) -> None:
    for i in range(n):
        record(AuditTag.COMPANY_CREATE, actor="test", company_id=f"co_{i:012d}", name=f"会社{i}")
    db.session.commit()


def seal() -> None:
    """Seal what is committed (tests.helpers.audit: on PostgreSQL, once the cluster's older
    transactions have ended)."""
    seal_all()


def write_events(n: int = 5) -> list[AuditEvent]:
    """``n`` events, appended, committed and sealed; as stored."""
    append_events(n)
    seal()
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def verify(**kwargs) -> chain.Verification:
    db.session.rollback()
    return chain.verify(db.session, check=audit_heads.check, **kwargs)


def tamper(sql: str, **params) -> None:
    """Run raw SQL on audit rows with the guard lifted, as an intruder could."""
    db.session.rollback()
    with db.engine.begin() as conn, lifted(conn):
        conn.execute(text(sql), params)


# ---- appending and sealing ------------------------------------------------------------------

def test_appending_writes_unsealed_entries(app, is_postgres):
    """Test that a commit writes its events as entries with their personal digest and no
    place in the chain yet (PostgreSQL: with the appending transaction's id)."""
    append_events(3)
    rows = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [(r.seq, r.prev_digest, r.digest, r.format) for r in rows] == [(None,) * 4] * 3
    assert all(len(r.personal_digest) == 64 for r in rows)
    assert all((r.xid is not None) == is_postgres for r in rows)
    assert db.session.scalar(select(AuditHead)) is None
    result = verify()
    assert result.ok and result.events == 0 and result.unsealed == 3


def test_sealing_chains_entries_in_append_order_under_a_signed_head(app):
    """Test that the sealer gives contiguous positions in id order, links each digest to the
    one before, and writes one head whose JWS signs the head statement."""
    append_events(4)
    seal()
    rows = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    assert {r.format for r in rows} == {chain.FORMAT}
    assert rows[0].prev_digest == chain.GENESIS
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_digest == before.digest
    (head,) = db.session.scalars(select(AuditHead))
    assert (head.seq, head.digest, head.format) == (4, rows[-1].digest, 2)
    assert audit_heads.check(head.kid, head.signature) == chain.head_statement(
        4, rows[-1].digest, head.sealed_at)
    assert seal_pending() == {"batches": 0, "events": 0, "seq": 0}  # nothing left


def test_the_digest_covers_the_append_id(app):
    """Test that format 2 binds the entry's id: the same content under another id has
    another digest."""
    (row,) = write_events(1)
    moved = {c.name: getattr(row, c.name) for c in AuditEvent.__table__.columns}
    moved["id"] += 1
    assert chain.event_digest(chain.GENESIS, row) == row.digest
    assert chain.event_digest(chain.GENESIS, type("Row", (), moved)) != row.digest


def test_batches_each_get_a_head(app):
    """Test that sealing in batches writes one head per batch and the chain runs on."""
    append_events(5)
    db.session.rollback()
    seal_in_batches(limit=2)
    assert list(db.session.scalars(select(AuditHead.seq).order_by(AuditHead.seq))) == [2, 4, 5]
    result = verify()
    assert result.ok and (result.events, result.heads, result.heads_signed) == (5, 3, 3)


def test_intact_chain_verifies(app):
    """Test that verify() recomputes every digest and reports the head."""
    written = write_events(6)
    result = verify()
    assert result.ok and result.events == 6
    assert (result.head_seq, result.head_digest) == (6, written[-1].digest)
    assert result.unsealed == 0 and result.oldest_unsealed_age == 0


def test_unsealed_tail_is_reported(app):
    """Test that verify() counts the entries not sealed yet and dates the oldest."""
    write_events(2)
    append_events(3)
    db.session.rollback()
    oldest = db.session.scalar(select(AuditEvent.at).where(AuditEvent.seq.is_(None))
                               .order_by(AuditEvent.id).limit(1))
    result = verify()
    assert result.ok and result.events == 2 and result.unsealed == 3
    assert result.oldest_unsealed_at == oldest and result.oldest_unsealed_age >= 0
    assert result.as_dict()["unsealed"]["count"] == 3


def test_one_commit_with_several_events_chains_them_in_order(client):
    """Test that a whole code flow (many events per request) leaves one intact chain."""
    factories.resident()
    rp = factories.rp()
    tokens_for(client, rp, "openid email")
    seal()
    result = verify()
    assert result.ok and result.events >= 6 and result.unsealed == 0


def test_rolled_back_events_are_not_appended(app):
    """Test that events of a rolled-back transaction (or savepoint) leave no trace."""
    append_events(2)
    record(AuditTag.COMPANY_CREATE, actor="test", name="gone")
    db.session.rollback()
    with db.session.begin_nested():
        record(AuditTag.COMPANY_CREATE, actor="test", name="kept")
    nested = db.session.begin_nested()
    record(AuditTag.COMPANY_CREATE, actor="test", name="savepoint rolled back")
    nested.rollback()
    db.session.commit()
    seal()
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
    seal()
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


def _rebuild_chain() -> None:
    """Recompute every sealed digest after an edit, as a forger who can write the table would."""
    db.session.rollback()
    with db.engine.begin() as conn, lifted(conn):
        rows = conn.execute(select(*AuditEvent.__table__.c).where(AuditEvent.seq.is_not(None))
                            .order_by(AuditEvent.seq)).all()
        prev = chain.GENESIS
        for row in rows:
            digest = chain.event_digest(prev, row)
            conn.execute(AuditEvent.__table__.update().where(AuditEvent.id == row.id)
                         .values(prev_digest=prev, digest=digest))
            prev = digest


def _forge_heads(sign=None) -> None:
    """Point every head at the rebuilt chain: with its old signature, or signed by ``sign``."""
    db.session.rollback()
    forged = []
    for head in db.session.execute(select(*AuditHead.__table__.c)).all():
        digest = db.session.scalar(select(AuditEvent.digest).where(AuditEvent.seq == head.seq))
        values = {"digest": digest}
        if sign is not None:
            values["kid"], values["signature"] = sign(
                chain.head_statement(head.seq, digest, head.sealed_at))
        forged.append((head.id, values))
    db.session.rollback()
    with db.engine.begin() as conn, lifted(conn):
        for head_id, values in forged:
            conn.execute(AuditHead.__table__.update().where(AuditHead.id == head_id)
                         .values(**values))


def test_a_rebuilt_chain_is_caught_by_its_signed_head(app):
    """Test that recomputing every digest after an edit leaves the signed head behind, and
    that moving the head along breaks its signature."""
    write_events(4)
    tamper("UPDATE audit_events SET data = :data WHERE seq = 2", data=json.dumps({"name": "X"}))
    _rebuild_chain()
    result = verify()
    assert result.first_break.seq == 4 and "forged head" in result.first_break.reason
    _forge_heads()
    result = verify()
    assert result.first_break.seq == 4
    assert "not what its signature says" in result.first_break.reason


def test_a_head_signed_with_another_key_is_caught(app):
    """Test that a head re-signed by a key that is not the IdP's (under the IdP's kid, or
    under a kid of its own) does not verify."""
    write_events(3)
    (head,) = db.session.scalars(select(AuditHead))
    kid = head.kid
    forged_key = ECKey.generate_key("P-256", private=True)

    def foreign(statement: bytes, kid: str = kid) -> tuple[str, str]:
        return kid, jws.serialize_compact({"alg": "ES256", "kid": kid}, statement, forged_key,
                                          algorithms=["ES256"])

    _forge_heads(foreign)
    assert "does not verify" in verify().first_break.reason
    _forge_heads(lambda statement: foreign(statement, "forger-kid"))
    assert "signing key that does not exist" in verify().first_break.reason


def test_a_forged_head_beyond_the_chain_or_unsigned_is_caught(app):
    """Test that a head inserted by hand is caught: past the end, or unsigned."""
    written = write_events(3)
    tamper("INSERT INTO audit_heads (seq, digest, sealed_at, format) "
           "VALUES (9, :digest, :at, 2)", digest="a" * 64, at=written[0].at)
    result = verify()
    assert "removed from the end" in result.first_break.reason
    tamper("DELETE FROM audit_heads WHERE seq = 9")
    append_events(1)
    seal()
    tamper("UPDATE audit_heads SET signature = NULL WHERE seq = 4")
    assert verify().first_break.reason == "the head at event 4 is not signed"


def test_sealed_events_no_head_covers_are_caught(app):
    """Test that rows sealed around the sealer (no head written) are named."""
    write_events(2)
    append_events(1)
    db.session.rollback()
    (row,) = db.session.execute(select(*AuditEvent.__table__.c)
                                .where(AuditEvent.seq.is_(None))).all()
    end_seq, end_digest = chain.chain_end(db.session)
    digest = chain.event_digest(end_digest, row, end_seq + 1, chain.FORMAT)
    db.session.execute(AuditEvent.__table__.update().where(AuditEvent.id == row.id).values(
        seq=end_seq + 1, prev_digest=end_digest, digest=digest, format=chain.FORMAT))
    db.session.commit()  # the guard lets the one-time sealing update through
    result = verify()
    assert not result.ok and "covered by no head" in result.first_break.reason


def test_a_chain_rebuilt_with_the_signing_key_is_caught_by_a_recorded_anchor(app):
    """Test that a forger who also holds the signing key fools the signed heads, but not an
    anchor written down before."""
    write_events(4)
    anchor = (verify().head_seq, verify().head_digest)
    tamper("UPDATE audit_events SET data = :data WHERE seq = 2", data=json.dumps({"name": "X"}))
    _rebuild_chain()
    _forge_heads(audit_heads.sign)
    assert verify().ok  # the forger recomputed and re-signed everything …
    result = verify(anchors=[anchor])
    assert not result.ok  # … but the anchor kept outside tells
    assert result.first_break.seq == 4
    assert result.anchors == [{"seq": 4, "ok": False}]


def test_an_anchor_beyond_the_chain_fails(app):
    """Test that an anchor naming an event that does not exist is a failure."""
    write_events(2)
    result = verify(anchors=[(9, "a" * 64)])
    assert not result.ok and "does not have" in result.first_break.reason


@pytest.mark.parametrize("sealed", [True, False])
def test_unaccounted_redaction_is_detected(app, sealed):
    """Test that clearing a row's personal columns outside an account deletion is flagged,
    sealed or not."""
    record(AuditTag.LOGIN_SUCCESS, resident_id="AAAAAAAAAAAAAAAA")
    db.session.commit()
    if sealed:
        seal()
    db.session.execute(text("UPDATE audit_events SET resident_id = NULL, ip = NULL, "
                            "user_agent = NULL, personal_salt = NULL"))
    db.session.commit()
    result = verify()
    assert not result.ok
    assert "account deletions account for only 0" in result.first_break.reason


def test_account_deletion_redacts_sealed_and_unsealed_entries(client):
    """Test that the resident's account deletion (issue 5) de-identifies sealed and unsealed
    rows alike, the triggers allow it, and the chain verifies with every redaction accounted
    for, before and after the tail is sealed."""
    resident = factories.resident()
    rp = factories.rp()
    tokens_for(client, rp, "openid email")
    seal()
    record(AuditTag.LOGIN_SUCCESS, resident_id=resident.id)
    db.session.commit()
    with client.application.test_request_context():
        delete_resident(db.session.merge(resident), factories.PASSWORD)
        db.session.commit()
    rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.personal_salt.is_(None))))
    assert {r.seq is None for r in rows} == {True, False}  # both kinds were redacted
    result = verify()
    assert result.ok, result.first_break
    assert result.unsealed > 0
    assert result.redacted > 0 and result.redacted == result.redactions_accounted
    seal()
    result = verify()
    assert result.ok and result.unsealed == 0
    assert result.redacted == result.redactions_accounted
    assert db.session.scalar(select(AuditEvent).where(
        AuditEvent.resident_id == resident.id)) is None


def test_deidentify_scrubs_events_not_yet_committed(app):
    """Test that events of the deleting transaction are written without the resident."""
    record(AuditTag.LOGIN_SUCCESS, resident_id="CCCCCCCCCCCCCCCC")
    deidentify_resident("CCCCCCCCCCCCCCCC")
    db.session.commit()
    seal()
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
    """Test that raw UPDATE and DELETE on audit_events and audit_heads are refused by the
    database, sealing a sealed row again too."""
    write_events(2)
    assert _refused("UPDATE audit_events SET tag = 'company:delete' WHERE seq = 1")
    assert _refused("UPDATE audit_events SET resident_id = NULL, tag = 'x' WHERE seq = 1")
    assert _refused("UPDATE audit_events SET seq = 7, digest = :d WHERE seq = 1", d="b" * 64)
    assert _refused("UPDATE audit_events SET seq = NULL, prev_digest = NULL, digest = NULL, "
                    "format = NULL WHERE seq = 1")
    assert _refused("DELETE FROM audit_events WHERE seq = 2")
    assert _refused("DELETE FROM audit_heads")
    assert _refused("UPDATE audit_heads SET seq = 1")
    db.session.rollback()
    assert [e.tag for e in db.session.scalars(select(AuditEvent))] == ["company:create"] * 2
    assert verify().ok


def test_triggers_let_sealing_set_the_chain_columns_once_and_nothing_else(app):
    """Test that on an unsealed row the chain columns can be set once, but not together with
    another column, and not half of them."""
    append_events(1)
    db.session.rollback()
    chain_columns = "seq = 1, prev_digest = :d, digest = :d, format = 2"
    assert _refused(f"UPDATE audit_events SET {chain_columns}, tag = 'x'", d="c" * 64)
    assert _refused(f"UPDATE audit_events SET {chain_columns}, resident_id = 'X'", d="c" * 64)
    assert _refused("UPDATE audit_events SET seq = 1", d="c" * 64)
    assert not _refused(f"UPDATE audit_events SET {chain_columns}", d="c" * 64)
    assert _refused(f"UPDATE audit_events SET {chain_columns}", d="d" * 64)


def test_truncate_is_refused_on_postgresql(app, is_postgres):
    """Test that TRUNCATE, which skips row triggers, has its own refusal."""
    if not is_postgres:
        pytest.skip("SQLite has no TRUNCATE")
    write_events(1)
    assert _refused("TRUNCATE audit_events")


def test_guard_is_installed_by_the_migration(app):
    """Test that the migrated database has every trigger, and that the guard module's SQL
    is what the sealing migration ran (SQLite keeps the statement text)."""
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
                "('audit_events_append_only', 'audit_heads_append_only')")))
            expected = {s.split("$$")[1] for s in guard.POSTGRESQL_CREATE if "$$" in s}
            assert bodies == expected
    with db.engine.begin() as conn, lifted(conn):
        assert not guard.installed(conn)


# ---- concurrency ----------------------------------------------------------------------------------

def test_parallel_appends_and_one_sealer_leave_one_chain(app, migrated):
    """Test that 20 transactions committing events at the same moment all succeed, and the
    sealer makes one chain of them without gaps or forks; a transaction's events keep their
    order."""
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
    seal_all()
    rows = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [r.seq for r in rows] == list(range(1, 2 * n + 2))
    assert [r.prev_digest for r in rows[1:]] == [r.digest for r in rows[:-1]]
    for i in range(n):
        pair = [r for r in rows if r.data.get("name") == f"parallel {i}"]
        assert [r.tag for r in pair] == ["company:create", "client:create"]
    assert verify().ok


def _open_append(engine, name: str) -> Session:
    """A transaction that has appended one entry (the very statement a commit runs) and
    stays open."""
    session = Session(engine)
    chain.append(session, [AuditEvent(tag=str(AuditTag.COMPANY_CREATE), at=utcnow(),
                                      actor="test", data={"name": name},
                                      personal_salt=secrets.token_hex(16))])
    return session


def test_writers_do_not_wait_on_an_open_append(app, migrated, is_postgres):
    """Test that while one transaction has appended and stays open, 8 others append and commit
    at once: no shared row is locked (each would give up after lock_timeout)."""
    if not is_postgres:
        pytest.skip("SQLite has one writer at a time")
    worker_app = create_app({**TEST_SETTINGS, "database_url": migrated})
    n = 8
    barrier = threading.Barrier(n)

    def append(i: int) -> str:
        with worker_app.app_context():
            db.session.execute(text("SET LOCAL lock_timeout = '2s'"))
            record(AuditTag.TOKEN_ISSUE, client_id=f"mc_{i:020d}", i=i)
            record(AuditTag.CLAIMS_RELEASE, client_id=f"mc_{i:020d}", i=i)
            barrier.wait()
            db.session.commit()
            return "committed"

    with worker_app.app_context():
        held = _open_append(db.engine, "A")
        try:
            with ThreadPoolExecutor(max_workers=n) as pool:
                assert list(pool.map(append, range(n))) == ["committed"] * n
            held.commit()
        finally:
            held.close()
            db.session.remove()
            db.engine.dispose()
    seal_all()
    result = verify()
    assert result.ok and result.events == 2 * n + 1


def test_an_entry_still_in_flight_is_sealed_in_its_turn_and_a_gap_is_not_waited_on(
        app, migrated, is_postgres):
    """Test out-of-order commits: A appends first and stays open; B appends after it and
    commits; C appends and rolls back (a permanent gap in the ids). B waits for A (it cannot
    be sealed before an older transaction that may precede it); once A commits, both are
    sealed in id order and C's id is never waited on."""
    if not is_postgres:
        pytest.skip("SQLite has one writer at a time")
    engine = create_engine(db.engine.url)
    try:
        a = _open_append(engine, "A")
        c = _open_append(engine, "C")
        b = _open_append(engine, "B")
        b.commit()
        c.rollback()
        seal_pending()
        db.session.rollback()
        by_name = {e.data["name"]: e for e in db.session.scalars(select(AuditEvent))}
        assert set(by_name) == {"B"} and by_name["B"].seq is None
        a.commit()
    finally:
        for session in (a, b, c):
            session.close()
        engine.dispose()
    seal_all()
    rows = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [r.data["name"] for r in rows] == ["A", "B"]
    assert [r.seq for r in rows] == [1, 2]
    assert rows[1].id - rows[0].id == 2  # C's id is the gap
    result = verify()
    assert result.ok and result.events == 2 and result.unsealed == 0


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
        result = chain.verify(db.session, check=audit_heads.check)
        assert result.ok, result.first_break
        # Format 1 events under the sealing migration's unsigned format 1 head.
        assert (result.events, result.heads, result.heads_signed) == (3, 1, 0)
        assert set(db.session.scalars(select(AuditEvent.format))) == {1}
        record(AuditTag.COMPANY_CREATE, actor="test", name="after the migration")
        db.session.commit()
        seal_all()  # the new entry, once no older transaction of the shared server is open
        result = chain.verify(db.session, check=audit_heads.check)
        assert result.ok and (result.events, result.heads, result.heads_signed) == (4, 2, 1)
        assert db.session.scalar(select(AuditEvent.format).where(AuditEvent.seq == 4)) == 2
        assert guard.installed(db.session.connection())
        db.session.remove()
        db.engine.dispose()


def test_sealing_brings_the_lag_metric_back_to_zero(client):
    """Test that once the sealer ran, /metrics reports no unsealed event and no lag."""
    append_events(2)
    db.session.rollback()

    def gauges() -> tuple[float, float]:
        body = client.get("/metrics").get_data(as_text=True)
        values = {family.name: family.samples[0].value
                  for family in text_string_to_metric_families(body)
                  if family.name.startswith("machi_id_audit_")}
        return (values["machi_id_audit_sealing_lag_seconds"],
                values["machi_id_audit_unsealed_events"])

    lag, unsealed = gauges()
    assert lag > 0 and unsealed == 2
    seal()
    assert gauges() == (0, 0)
