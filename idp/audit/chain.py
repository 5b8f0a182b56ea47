"""The audit hash chain: how an event's digest is made, appending, and verification.

Digest of event n (format 1)::

    personal_digest = SHA-256( canonical {"salt", "resident_id", "ip", "user_agent"} )
    digest(n)       = SHA-256( digest(n-1) "\\n" canonical {"v": 1, "seq", "tag", "at",
                               "actor", "admin_id", "client_id", "company_id", "data",
                               "personal_digest"} )

``canonical`` is JSON with sorted keys, no spaces, UTF-8; ``at`` is ISO 8601 in
UTC with microseconds. The first event chains onto 64 zeros (``GENESIS``).

The chain proves that nothing was changed, inserted or removed *since an
anchor the verifier trusts*: anyone who can write the table can also rebuild
every digest after a change. So the digest of the head is meant to be written
down outside the database from time to time (``idp audit verify`` prints it;
``--expect SEQ:DIGEST`` checks a recorded one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from idp.audit.models import AuditChainHead
from idp.audit.models import AuditEvent
from idp.db import dialect_insert
from idp.db import utcnow

GENESIS = "0" * 64
FORMAT = 1
HEAD_ID = 1
# Account deletion records how many rows it redacted (idp.privacy.deletion).
DELETION_TAG = "resident:account:delete"
DELETION_COUNT = "audit_events_deidentified"


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def personal_digest(salt: str | None, resident_id: str | None, ip: str | None,
                    user_agent: str | None) -> str:
    return sha256(canonical({"salt": salt, "resident_id": resident_id, "ip": ip,
                             "user_agent": user_agent}))


def _body(event: Any) -> str:
    return canonical({
        "v": FORMAT,
        "seq": event.seq,
        "tag": event.tag,
        "at": timestamp(event.at),
        "actor": event.actor,
        "admin_id": event.admin_id,
        "client_id": event.client_id,
        "company_id": event.company_id,
        "data": event.data,
        "personal_digest": event.personal_digest,
    }).decode("utf-8")


def event_digest(prev_digest: str, event: Any) -> str:
    """``event``: an AuditEvent or a row with the same columns."""
    return sha256(prev_digest.encode("ascii") + b"\n" + _body(event).encode("utf-8"))


# ---- appending ---------------------------------------------------------------

HEAD = AuditChainHead.__table__
EVENTS = AuditEvent.__table__
# What append() writes of an event (the id is the database's).
EVENT_COLUMNS = tuple(c.name for c in EVENTS.columns if c.name != "id")


def _lock_head(session: Session) -> tuple[int, str]:
    """The head's (seq, digest), its row locked until the transaction ends (created on
    an empty database).

    PostgreSQL: ``SELECT … FOR UPDATE`` makes concurrent appenders queue here.
    SQLite: every transaction already holds the write lock (``BEGIN IMMEDIATE``,
    ``idp.db``), so they queue before they get this far.
    """
    query = select(HEAD.c.seq, HEAD.c.digest).where(HEAD.c.id == HEAD_ID).with_for_update()
    head = session.execute(query).first()
    if head is not None:
        return head.seq, head.digest
    # A fresh database (or one whose head row was lost): start from the last
    # event, if any, so appending goes on; verify() reports a head that does
    # not match the events.
    last = session.execute(
        select(EVENTS.c.seq, EVENTS.c.digest).order_by(EVENTS.c.seq.desc()).limit(1)
    ).first()
    session.execute(
        dialect_insert(session, HEAD)
        .values(id=HEAD_ID, seq=last.seq if last else 0, digest=last.digest if last else GENESIS,
                updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
    )
    head = session.execute(query).one()
    return head.seq, head.digest


def append(session: Session, events: Iterable[AuditEvent]) -> None:
    """Chain ``events`` onto the head, in order, and write them.

    Core statements, not the unit of work: this runs on every audited request
    (a token, a claims release, a touch-event batch), and the ORM flush cost
    more CPU than the rest of the append (docs/performance.md). On PostgreSQL
    a single event (the hot paths' case) is one statement (``_append_one``);
    otherwise three, whatever the number of events: lock the head, insert the
    events (one executemany), move the head. The events stay transient
    objects carrying their ``seq`` and digests; load the row by ``seq`` to see
    it as stored.
    """
    events = list(events)
    if not events:
        return
    for event in events:
        event.personal_digest = personal_digest(event.personal_salt, event.resident_id,
                                                event.ip, event.user_agent)
    if (len(events) == 1 and session.get_bind().dialect.name == "postgresql"
            and _append_one(session, events[0])):
        return
    seq, digest = _lock_head(session)
    rows = []
    for event in events:
        seq += 1
        event.seq = seq
        event.prev_digest = digest
        event.digest = digest = event_digest(digest, event)
        rows.append({name: getattr(event, name) for name in EVENT_COLUMNS})
    session.execute(EVENTS.insert(), rows)
    session.execute(HEAD.update().where(HEAD.c.id == HEAD_ID)
                    .values(seq=seq, digest=digest, updated_at=utcnow()))


# The digest input of an event is ``prev "\\n" body``, and ``seq`` is the only
# part of the body that depends on the head. The body is made in Python (the
# same canonical() as verify) with a placeholder for seq, and PostgreSQL puts
# the head's next seq in, hashes (sha256(), built in since PostgreSQL 11),
# inserts the event and moves the head, all in one statement: the head row is
# locked from this statement to the commit, one round trip instead of three.
# Top-level keys are sorted, so '"seq":…,"tag":' is the last occurrence.
SEQ_SENTINEL = -7_340_032_991
SEQ_MARK = f',"seq":{SEQ_SENTINEL},"tag":'
ONE_COLUMNS = tuple(n for n in EVENT_COLUMNS if n not in ("seq", "prev_digest", "digest"))
# The column list comes from the table definition, never from input.
_APPEND_ONE_SQL = f"""
    WITH old AS (
        SELECT seq, digest FROM audit_chain_head WHERE id = :head_id FOR UPDATE
    ), new AS (
        SELECT old.seq + 1 AS seq, old.digest AS prev_digest,
               encode(sha256(convert_to(old.digest || chr(10) || :body_prefix || ',"seq":'
                                        || (old.seq + 1)::text || ',"tag":' || :body_suffix,
                                        'UTF8')), 'hex') AS digest
        FROM old
    ), ins AS (
        INSERT INTO audit_events ({", ".join(ONE_COLUMNS)}, seq, prev_digest, digest)
        SELECT {", ".join(f"CAST(:{n} AS {EVENTS.c[n].type.compile(postgresql.dialect())})"
                          for n in ONE_COLUMNS)},
               new.seq, new.prev_digest, new.digest
        FROM new
        RETURNING seq, prev_digest, digest
    )
    UPDATE audit_chain_head SET seq = ins.seq, digest = ins.digest,
                                updated_at = CAST(:now AS TIMESTAMP WITH TIME ZONE)
    FROM ins WHERE audit_chain_head.id = :head_id
    RETURNING ins.seq, ins.prev_digest, ins.digest
"""  # noqa: S608
_APPEND_ONE = text(_APPEND_ONE_SQL).bindparams(
    *(bindparam(n, type_=EVENTS.c[n].type) for n in ONE_COLUMNS),
    bindparam("now", type_=HEAD.c.updated_at.type))


def _append_one(session: Session, event: AuditEvent) -> bool:
    """PostgreSQL: chain and write one event in one statement. False if there is no head
    row yet (the first event of a database), for the general path to create it."""
    event.seq = SEQ_SENTINEL
    prefix, found, suffix = _body(event).rpartition(SEQ_MARK)
    if not found:  # cannot happen with canonical(); the general path is always right
        event.seq = None
        return False
    row = session.execute(_APPEND_ONE, {
        **{n: getattr(event, n) for n in ONE_COLUMNS},
        "body_prefix": prefix, "body_suffix": suffix, "head_id": HEAD_ID, "now": utcnow(),
    }).first()
    if row is None:
        event.seq = None
        return False
    event.seq, event.prev_digest, event.digest = row.seq, row.prev_digest, row.digest
    return True


# ---- verification --------------------------------------------------------------

@dataclass
class Break:
    seq: int | None
    event_id: int | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "id": self.event_id, "reason": self.reason}


@dataclass
class Verification:
    events: int = 0
    head_seq: int = 0
    head_digest: str = GENESIS
    redacted: int = 0
    redactions_accounted: int = 0
    first_break: Break | None = None
    anchors: list[dict[str, Any]] = field(default_factory=list)
    guard_installed: bool | None = None

    @property
    def ok(self) -> bool:
        return self.first_break is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": {"seq": self.head_seq, "digest": self.head_digest},
            "redacted": self.redacted,
            "redactions_accounted": self.redactions_accounted,
            "first_break": self.first_break.as_dict() if self.first_break else None,
            "anchors": self.anchors,
            "guard_installed": self.guard_installed,
        }


def parse_anchor(value: str) -> tuple[int, str]:
    """``SEQ:DIGEST`` as printed by ``idp audit verify``."""
    seq, sep, digest = value.partition(":")
    digest = digest.strip().lower()
    if not sep or not seq.strip().isdigit() or len(digest) != 64 or \
            any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"an anchor is SEQ:DIGEST (64 hex characters), not {value!r}")
    return int(seq), digest


def _check_row(event: Any, expected_seq: int, prev: str) -> str | None:
    """Why this row breaks the chain, or None."""
    if event.seq != expected_seq:
        if event.seq > expected_seq:
            return f"events {expected_seq} to {event.seq - 1} are missing"
        return f"seq {event.seq} appears again after {expected_seq - 1}"
    if event.prev_digest != prev:
        return "prev_digest does not match the digest of the event before it"
    if event.personal_salt is not None:
        if personal_digest(event.personal_salt, event.resident_id, event.ip,
                           event.user_agent) != event.personal_digest:
            return "resident_id, ip or user_agent was changed"
    elif (event.resident_id, event.ip, event.user_agent) != (None, None, None):
        return "personal columns are set on a redacted event"
    if event_digest(prev, event) != event.digest:
        return "the event's content does not match its digest"
    return None


def verify(session: Session, anchors: Iterable[tuple[int, str]] = (),
           batch: int = 1000) -> Verification:
    """Recompute the chain from the first event; stop at the first broken link."""
    result = Verification()
    wanted = dict(anchors)
    prev, expected = GENESIS, 1
    last_id = None
    deleted_total = 0
    after = 0
    while result.first_break is None:
        # Plain rows, not ORM objects: nothing lands in the caller's session.
        rows = session.execute(
            select(*AuditEvent.__table__.c).where(AuditEvent.seq > after)
            .order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            break
        for event in rows:
            reason = _check_row(event, expected, prev)
            if reason is not None:
                result.first_break = Break(event.seq, event.id, reason)
                break
            if event.seq in wanted:
                ok = wanted.pop(event.seq) == event.digest
                result.anchors.append({"seq": event.seq, "ok": ok})
                if not ok:
                    result.first_break = Break(
                        event.seq, event.id,
                        "the digest differs from the anchor recorded for this event: the "
                        "chain up to here was rebuilt")
                    break
            if event.personal_salt is None:
                result.redacted += 1
            if event.tag == DELETION_TAG:
                count = (event.data or {}).get(DELETION_COUNT)
                deleted_total += count if isinstance(count, int) else 0
            prev, expected, last_id = event.digest, expected + 1, event.id
            result.events += 1
        after = rows[-1].seq
    result.head_seq, result.head_digest = expected - 1, prev
    result.redactions_accounted = deleted_total
    if result.first_break is not None:
        return result
    for seq in sorted(wanted):
        result.anchors.append({"seq": seq, "ok": False})
        result.first_break = Break(seq, None, "an anchor names an event the chain does not have")
        return result
    head = session.execute(
        select(AuditChainHead.seq, AuditChainHead.digest).where(AuditChainHead.id == HEAD_ID)
    ).first()
    if head is None:
        if result.events:
            result.first_break = Break(None, last_id, "the chain head row is missing")
    elif (head.seq, head.digest) != (result.head_seq, result.head_digest):
        result.first_break = Break(
            head.seq, None,
            f"the chain head names event {head.seq}, but the last event is "
            f"{result.head_seq}: events were removed from the end")
    if result.first_break is None and result.redacted > deleted_total:
        result.first_break = Break(
            None, None,
            f"{result.redacted} events are redacted but account deletions account for only "
            f"{deleted_total}")
    return result
