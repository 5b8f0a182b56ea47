"""The audit log: appending entries, sealing them into a hash chain, and verification.

A Certificate-Transparency-style log. Requests only *append* (``append``): one
INSERT per commit, no chain position yet and no lock any other writer needs.
The sealer (``seal``, run every second or so by ``idp worker``, or ``idp audit
seal``) takes the committed, unsealed entries in a well-defined order, gives
them contiguous positions ``seq`` and digests, and writes a *head* for the
batch, signed with the IdP's signing key (a Signed Tree Head).

Digest of the event at position n::

    personal_digest = SHA-256( canonical {"salt", "resident_id", "ip", "user_agent"} )
    digest(n)       = SHA-256( digest(n-1) "\\n" canonical {"v", "seq", "tag", "at",
                               "actor", "admin_id", "client_id", "company_id", "data",
                               "personal_digest"[, "id"]} )

Format 1 (``"v": 1``, events chained before sealing existed) has no ``"id"``;
format 2 (``"v": 2``, every event sealed since) adds the entry's append id, so
the order the sealer chose is bound to the entries it sealed. ``canonical`` is
JSON with sorted keys, no spaces, UTF-8; ``at`` is ISO 8601 in UTC with
microseconds. The first event chains onto 64 zeros (``GENESIS``). A head
signs ``canonical {"v": 2, "seq", "digest", "sealed_at"}`` (``head_statement``)
as a compact JWS.

Which entries may be sealed: on PostgreSQL the append id comes from a sequence
at insert, but transactions commit in another order and a rolled-back one
leaves a gap for good. Each entry records its transaction id
(``pg_current_xact_id()``); the sealer takes only entries whose transaction is
older than the oldest one still running (``pg_snapshot_xmin``): no entry it
cannot see yet can ever come before them, and a gap is never waited on. Among
those, append id order; the sealing order then defines the chain. SQLite has
one writer at a time, so every committed entry is sealable, in id order. One
sealer at a time: an advisory lock on PostgreSQL (``pg_try_advisory_xact_lock``,
taken by the sealer only), the database write lock on SQLite.

The chain proves that nothing was changed, inserted or removed *since an
anchor the verifier trusts*. A signed head is one such anchor (rebuilding the
chain needs the signing key); the digest printed by ``idp audit verify`` is
another, written down outside the database (``--expect SEQ:DIGEST``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from idp.audit.models import AuditEvent
from idp.audit.models import AuditHead
from idp.db import utcnow

GENESIS = "0" * 64
# The digest format the sealer writes; format 1 events (chained before sealing
# existed) still verify.
FORMAT = 2
FORMATS = (1, 2)
# At most this many entries per head; the sealer loops while there are more.
BATCH = 5000
# pg_try_advisory_xact_lock key of the one sealer ("machi-id audit sealer").
SEALER_LOCK = 0x6D61636869A5EA1
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


def _body(event: Any, seq: int, fmt: int) -> str:
    body = {
        "v": fmt,
        "seq": seq,
        "tag": event.tag,
        "at": timestamp(event.at),
        "actor": event.actor,
        "admin_id": event.admin_id,
        "client_id": event.client_id,
        "company_id": event.company_id,
        "data": event.data,
        "personal_digest": event.personal_digest,
    }
    if fmt >= 2:
        body["id"] = event.id
    return canonical(body).decode("utf-8")


def event_digest(prev_digest: str, event: Any, seq: int | None = None,
                 fmt: int | None = None) -> str:
    """``event``: an AuditEvent or a row with the same columns; its own ``seq`` and
    ``format`` unless given (an unsealed entry has neither)."""
    seq = event.seq if seq is None else seq
    fmt = fmt or getattr(event, "format", None) or FORMAT
    return sha256(prev_digest.encode("ascii") + b"\n" + _body(event, seq, fmt).encode("utf-8"))


def head_statement(seq: int, digest: str, sealed_at: dt.datetime) -> bytes:
    """What a head's signature covers (the JWS payload)."""
    return canonical({"v": FORMAT, "seq": seq, "digest": digest,
                      "sealed_at": timestamp(sealed_at)})


# ---- appending ---------------------------------------------------------------

EVENTS = AuditEvent.__table__
HEADS = AuditHead.__table__
# What append() writes of an entry: everything but what the database or the sealer sets.
ENTRY_COLUMNS = tuple(c.name for c in EVENTS.columns
                      if c.name not in ("id", "xid", "seq", "format", "prev_digest", "digest"))
# PostgreSQL: the appending transaction, as a number (xid8 has no wraparound).
CURRENT_XID = literal_column("pg_current_xact_id()::text::bigint")
SNAPSHOT_XMIN = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


# Constant statements: their cache keys are computed once, not per audited request.
_INSERT = EVENTS.insert()
_INSERT_XID = EVENTS.insert().values(xid=CURRENT_XID)


def entry_row(event: Any) -> dict[str, Any]:
    """The columns ``append`` writes of an event (its personal digest made now), for
    ``append`` and for a statement that writes the entry with the change it describes."""
    event.personal_digest = personal_digest(event.personal_salt, event.resident_id,
                                            event.ip, event.user_agent)
    return {name: getattr(event, name) for name in ENTRY_COLUMNS}


def append(session: Session, events: Iterable[Any]) -> None:
    """Write ``events`` as unsealed entries, in order: one INSERT (an executemany), no lock.

    Core, not the unit of work: this runs on every audited request (a token, a
    claims release, a touch-event batch), and the ORM flush cost more CPU than
    the rest of the append (docs/performance.md). Nothing here reads or locks
    a shared row: concurrent requests on every node append side by side, and
    the sealer chains their entries after they commit. The events (``AuditEvent``
    or anything with its columns: ``idp.audit.service.Entry``) are not added to the
    session; load the rows to see them as stored. The INSERT runs on the session's
    connection, past the session's own execution layer: a fifth of a statement's
    Python calls on the path of every audited request.
    """
    events = list(events)
    if not events:
        return
    rows = [entry_row(event) for event in events]
    connection = session.connection()
    insert = _INSERT_XID if connection.dialect.name == "postgresql" else _INSERT
    connection.execute(insert, rows if len(rows) > 1 else rows[0])


# ---- sealing --------------------------------------------------------------------

# Signs a head statement: (kid, compact JWS). Given by the caller (idp.keys.audit_heads):
# the keys live on a floor above this module.
Signer = Callable[[bytes], tuple[str, str]]


@dataclass
class Sealed:
    events: int
    first_seq: int
    seq: int
    digest: str

    def as_dict(self) -> dict[str, Any]:
        return {"events": self.events, "first_seq": self.first_seq, "seq": self.seq,
                "digest": self.digest}


def _sealable(session: Session):
    """The entries a sealer may take now (see the module docstring)."""
    condition = EVENTS.c.seq.is_(None)
    if session.get_bind().dialect.name == "postgresql":
        condition = condition & or_(EVENTS.c.xid.is_(None), EVENTS.c.xid < SNAPSHOT_XMIN)
    return condition


def _take_sealer_lock(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # the transaction holds SQLite's write lock (BEGIN IMMEDIATE, idp.db)
    return bool(session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                {"key": SEALER_LOCK}).scalar())


def chain_end(session: Session) -> tuple[int, str]:
    """The last sealed event's (seq, digest), or (0, GENESIS)."""
    last = session.execute(select(EVENTS.c.seq, EVENTS.c.digest)
                           .where(EVENTS.c.seq.is_not(None))
                           .order_by(EVENTS.c.seq.desc()).limit(1)).first()
    return (last.seq, last.digest) if last else (0, GENESIS)


_SEAL = (EVENTS.update().where(EVENTS.c.id == bindparam("b_id"))
         .values(seq=bindparam("b_seq"), prev_digest=bindparam("b_prev"),
                 digest=bindparam("b_digest"), format=bindparam("b_format")))


def seal(session: Session, signer: Signer, limit: int = BATCH) -> Sealed | None:
    """Seal up to ``limit`` committed entries onto the chain and write their signed head.

    None when there is nothing to seal, or another sealer holds the lock. The
    caller commits (entries and head together). Runs in its own transaction,
    never on the request path.
    """
    if not _take_sealer_lock(session):
        return None
    seq, digest = chain_end(session)
    entries = session.execute(select(*EVENTS.c).where(_sealable(session))
                              .order_by(EVENTS.c.id).limit(limit)).all()
    if not entries:
        return None
    first = seq + 1
    params = []
    for entry in entries:
        seq += 1
        link = event_digest(digest, entry, seq, FORMAT)
        params.append({"b_id": entry.id, "b_seq": seq, "b_prev": digest, "b_digest": link,
                       "b_format": FORMAT})
        digest = link
    session.execute(_SEAL, params)
    sealed_at = utcnow()
    kid, signature = signer(head_statement(seq, digest, sealed_at))
    session.execute(HEADS.insert().values(seq=seq, digest=digest, sealed_at=sealed_at,
                                          format=FORMAT, kid=kid, signature=signature))
    return Sealed(len(entries), first, seq, digest)


@dataclass
class Tail:
    """The entries not sealed yet (committed ones, as this transaction sees them)."""
    count: int = 0
    oldest_at: dt.datetime | None = None

    def age(self, now: dt.datetime) -> float:
        if self.oldest_at is None:
            return 0.0
        oldest = self.oldest_at
        if oldest.tzinfo is None:  # SQLite gives naive UTC back
            oldest = oldest.replace(tzinfo=dt.UTC)
        return max((now - oldest).total_seconds(), 0.0)


def unsealed(session: Session) -> Tail:
    row = session.execute(select(func.count(), func.min(EVENTS.c.at))
                          .where(EVENTS.c.seq.is_(None))).one()
    return Tail(row[0] or 0, row[1])


# ---- verification --------------------------------------------------------------

# Checks a head's signature: (kid, compact JWS) -> the signed payload, or None when the
# signature does not verify; LookupError when no such key is stored (keys are never
# deleted, idp.keys.service.retire, so that is a forgery too).
SignatureCheck = Callable[[str, str], bytes | None]


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
    heads: int = 0
    heads_signed: int = 0
    unsealed: int = 0
    oldest_unsealed_at: dt.datetime | None = None
    oldest_unsealed_age: float = 0.0
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
            "heads": {"count": self.heads, "signed": self.heads_signed},
            "unsealed": {"count": self.unsealed,
                         "oldest_at": timestamp(self.oldest_unsealed_at)
                         if self.oldest_unsealed_at else None,
                         "oldest_age_seconds": round(self.oldest_unsealed_age, 3)},
            "redacted": self.redacted,
            "redactions_accounted": self.redactions_accounted,
            "first_break": self.first_break.as_dict() if self.first_break else None,
            "anchors": self.anchors,
            "guard_installed": self.guard_installed,
        }


def parse_anchor(value: str) -> tuple[int, str]:
    """``SEQ:DIGEST`` as printed by ``idp audit verify`` (SEQ: a chain position)."""
    seq, sep, digest = value.partition(":")
    digest = digest.strip().lower()
    if not sep or not seq.strip().isdigit() or len(digest) != 64 or \
            any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"an anchor is SEQ:DIGEST (64 hex characters), not {value!r}")
    return int(seq), digest


def _check_row(event: Any, expected_seq: int, prev: str, newest_format: int) -> str | None:
    """Why this sealed row breaks the chain, or None."""
    if event.seq != expected_seq:
        if event.seq > expected_seq:
            return f"events {expected_seq} to {event.seq - 1} are missing"
        return f"seq {event.seq} appears again after {expected_seq - 1}"
    if event.format not in FORMATS:
        return f"unknown digest format {event.format!r}"
    if event.format < newest_format:
        return f"a format {event.format} event after format {newest_format} events"
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


def _check_head(head: Any, digest: str, newest_format: int, first: bool,
                check: SignatureCheck | None, result: Verification) -> str | None:
    """Why this head (at a sealed event whose digest is ``digest``) is false, or None."""
    if head.digest != digest:
        return f"the head at event {head.seq} does not match the chain there (a forged head)"
    if head.format == 1:
        # The sealing migration's head of the chain that existed before it: unsigned.
        if not first or newest_format != 1:
            return "an unsigned format 1 head after the chain was first sealed"
        return None
    if head.format not in FORMATS:
        return f"unknown head format {head.format!r}"
    if not head.signature or not head.kid:
        return f"the head at event {head.seq} is not signed"
    result.heads_signed += 1
    if check is None:
        return None
    try:
        payload = check(head.kid, head.signature)
    except LookupError:
        return f"the head at event {head.seq} names a signing key that does not exist"
    if payload is None:
        return f"the signature of the head at event {head.seq} does not verify (a forged head)"
    if payload != head_statement(head.seq, head.digest, head.sealed_at):
        return f"the head at event {head.seq} is not what its signature says (a forged head)"
    return None


def _paged(session: Session, table: Any, upto: int, batch: int) -> Iterator[Any]:
    """Sealed rows (events or heads) up to position ``upto`` in ``seq`` order, ``batch`` at
    a time; plain rows, so nothing lands in the caller's session."""
    after = 0
    while True:
        rows = session.execute(select(*table.c).where(table.c.seq > after, table.c.seq <= upto)
                               .order_by(table.c.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def verify(session: Session, anchors: Iterable[tuple[int, str]] = (),
           check: SignatureCheck | None = None, batch: int = 1000) -> Verification:
    """Recompute the chain from the first sealed event, check every head on the way (and
    its signature with ``check``); stop at the first broken link. Reports the unsealed
    tail."""
    result = Verification()
    # The walk stops at the last head as of now: a batch sealed meanwhile commits its
    # events and its head together, so it is either wholly in or wholly out.
    upto = _last_head_seq(session)
    _verify_tail(session, result, upto)
    wanted = dict(anchors)
    prev, expected, newest_format = GENESIS, 1, 1
    heads = _paged(session, HEADS, upto, batch)
    head = next(heads, None)
    for event in _paged(session, EVENTS, upto, batch):
        reason = _check_row(event, expected, prev, newest_format)
        if reason is not None:
            result.first_break = Break(event.seq, event.id, reason)
            break
        newest_format = event.format
        if event.seq in wanted:
            ok = wanted.pop(event.seq) == event.digest
            result.anchors.append({"seq": event.seq, "ok": ok})
            if not ok:
                result.first_break = Break(
                    event.seq, event.id,
                    "the digest differs from the anchor recorded for this event: the "
                    "chain up to here was rebuilt")
                break
        while head is not None and head.seq <= event.seq:
            reason = (_check_head(head, event.digest, newest_format, result.heads == 0, check,
                                  result)
                      if head.seq == event.seq else
                      f"the head at {head.seq} names a position the chain passed")
            if reason is not None:
                result.first_break = Break(head.seq, event.id, reason)
                break
            result.heads += 1
            head = next(heads, None)
        if result.first_break is not None:
            break
        _count_redaction(event, result)
        prev, expected = event.digest, expected + 1
        result.events += 1
    result.head_seq, result.head_digest = expected - 1, prev
    if result.first_break is not None:
        return result
    for seq in sorted(wanted):
        result.anchors.append({"seq": seq, "ok": False})
        result.first_break = Break(seq, None, "an anchor names an event the chain does not have")
        return result
    if head is not None:
        result.first_break = Break(
            head.seq, None,
            f"the head names event {head.seq}, but the last sealed event is "
            f"{result.head_seq}: events were removed from the end")
    else:
        # One statement: sealed events past the newest head (a sealer writes both at once).
        newest = select(func.coalesce(func.max(HEADS.c.seq), 0)).scalar_subquery()
        stray = session.execute(select(func.min(EVENTS.c.seq), func.count())
                                .where(EVENTS.c.seq > newest)).one()
        if stray[1]:
            result.first_break = Break(
                stray[0], None,
                f"{stray[1]} sealed events from {stray[0]} on are covered by no head")
    if result.first_break is None and result.redacted > result.redactions_accounted:
        result.first_break = Break(
            None, None,
            f"{result.redacted} events are redacted but account deletions account for only "
            f"{result.redactions_accounted}")
    return result


def _last_head_seq(session: Session) -> int:
    return session.scalar(select(func.max(HEADS.c.seq))) or 0


def _count_redaction(event: Any, result: Verification) -> None:
    if event.personal_salt is None:
        result.redacted += 1
    if event.tag == DELETION_TAG:
        count = (event.data or {}).get(DELETION_COUNT)
        result.redactions_accounted += count if isinstance(count, int) else 0


def _verify_tail(session: Session, result: Verification, upto: int) -> None:
    """The unsealed entries (how many, the oldest), and the redactions of every row the walk
    up to ``upto`` does not reach: unsealed, or sealed after it started (a row only ever
    moves from the first kind to the second, so no row is counted twice or missed)."""
    tail = unsealed(session)
    result.unsealed, result.oldest_unsealed_at = tail.count, tail.oldest_at
    result.oldest_unsealed_age = tail.age(utcnow())
    beyond = or_(EVENTS.c.seq.is_(None), EVENTS.c.seq > upto)
    # Redacted rows first, deletions second: a deletion committed in between is then
    # counted with fewer of its redactions, never the reverse.
    result.redacted += session.scalar(select(func.count()).where(
        beyond, EVENTS.c.personal_salt.is_(None))) or 0
    for event in session.execute(select(EVENTS.c.tag, EVENTS.c.data).where(
            beyond, EVENTS.c.tag == DELETION_TAG)):
        count = (event.data or {}).get(DELETION_COUNT)
        result.redactions_accounted += count if isinstance(count, int) else 0
