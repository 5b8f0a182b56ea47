"""Kiosks and their touch events."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import NamedTuple

from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from idp import config
from idp import geo
from idp import inputs
from idp.access import service as access
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients import service as clients
from idp.clients.models import Client
from idp.db import insert_new
from idp.db import utcnow
from idp.extensions import db
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent

DEVICE_CODE = clients.DEVICE_CODE
KIOSK_GRANT_TYPES = [DEVICE_CODE, "client_credentials"]
KIOSK_SCOPES = ["openid", "touch_events"]
# A kiosk's clock may lag; a touch cannot come from the future beyond this.
FUTURE_SKEW = dt.timedelta(minutes=5)
# Kiosks buffer while offline, but not forever.
MAX_AGE = dt.timedelta(days=7)
# A touch's content id and its kiosk-made id (``TouchEvent.target``, ``.event_id``).
MAX_TARGET = 200
MAX_EVENT_ID = 100
# The longest string a batch ``validate_batch`` takes may hold (its strings are all
# printable: ``idp.api.touch_events`` relies on it beneath Flask).
LONGEST_STRING = max(MAX_TARGET, MAX_EVENT_ID, len("occurred_at"), inputs.MAX_INSTANT)
_MEMBERS = frozenset({"occurred_at", "target", "event_id"})


class TouchEventError(ValueError):
    """A rejected batch; ``field`` names the offending member (JSON pointer-ish)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class SessionEnded(TouchEventError):
    """A touch dated after the resident's session at the kiosk ended: after
    ``kiosk_idle_timeout`` without a touch, or ``kiosk_max_session`` after the approval.
    ``reason`` is ``idle`` or ``max_length``."""

    def __init__(self, field: str, message: str, reason: str):
        super().__init__(field, message)
        self.reason = reason


@dataclass(frozen=True)
class KioskSession:
    """A resident's session at one kiosk: it starts when they approve the device
    flow (the grant of the token) and its last activity is their last touch since."""

    started_at: dt.datetime
    last_touch_at: dt.datetime | None = None

    @property
    def last_activity(self) -> dt.datetime:
        return max(self.started_at, self.last_touch_at or self.started_at)


class ValidEvent(NamedTuple):
    """A checked touch (a tuple: a batch makes a hundred)."""

    occurred_at: dt.datetime
    target: str
    event_id: str | None


def _place(latitude, longitude, contact: str | None) -> tuple[float | None, float | None, str]:
    """Coordinates (both or neither) and a contact for the transparency page."""
    try:
        latitude, longitude = geo.coordinates(latitude, longitude)
    except ValueError as error:
        raise clients.ClientError(str(error)) from None
    contact = (contact or "").strip()
    if len(contact) > 200:
        raise clients.ClientError("contact must be at most 200 characters")
    return latitude, longitude, contact


def create_kiosk(company_id: str, name: str, location: str,
                 actor: str | None = None, *, latitude: float | None = None,
                 longitude: float | None = None, contact: str = ""
                 ) -> tuple[Client, str, Kiosk]:
    """A confidential device-flow client plus where its screen stands (and, for the
    transparency page, its coordinates and whom to ask)."""
    location = (location or "").strip()
    if not location or len(location) > 200:
        raise clients.ClientError("location must be 1 to 200 characters")
    latitude, longitude, contact = _place(latitude, longitude, contact)
    client, secret = clients.register_client(
        company_id, name, grant_types=list(KIOSK_GRANT_TYPES), scopes=list(KIOSK_SCOPES),
        purpose="タッチ操作の履歴（いつ、どのコンテンツに触れたか）を記録し、"
                "サービス改善と防災・政策のための統計（個人を特定しない形）に利用します。",
        purpose_en="Logs your touches on this screen (when, and which content) to improve the "
                   "service and, de-identified, for the city's disaster-support and policy "
                   "statistics.",
        actor=actor,
    )
    kiosk = Kiosk(client=client, location=location, latitude=latitude, longitude=longitude,
                  contact=contact)
    db.session.add(kiosk)
    db.session.flush()
    record(AuditTag.KIOSK_CREATE, actor=actor, client_id=client.id,
           company_id=client.company_id, location=location, latitude=latitude,
           longitude=longitude, contact=contact)
    return client, secret, kiosk


def update_kiosk(client_id: str, location: str, actor: str | None = None) -> Kiosk:
    """Record where a kiosk's screen stands now."""
    client = clients.editable_client(client_id)
    kiosk = db.session.get(Kiosk, client.id)
    if kiosk is None:
        raise clients.ClientError(f"client {client.id} is not a kiosk")
    location = (location or "").strip()
    if not location or len(location) > 200:
        raise clients.ClientError("location must be 1 to 200 characters")
    if location != kiosk.location:
        record(AuditTag.KIOSK_UPDATE, actor=actor, client_id=client.id,
               company_id=client.company_id, previous={"location": kiosk.location},
               location=location)
        kiosk.location = location
    return kiosk


def kiosks() -> list[Kiosk]:
    return list(db.session.scalars(select(Kiosk).order_by(Kiosk.created_at)))


def kiosk_for(client_id: str) -> Kiosk | None:
    return db.session.get(Kiosk, client_id)


# last_seen_at is kept to the minute: a kiosk posting many batches a second
# would otherwise make every one of them update (and lock until commit) the
# same row, and they would queue on it. Each process also remembers when it
# last wrote a kiosk's time, and skips the statement within that minute.
SEEN_RESOLUTION = dt.timedelta(minutes=1)
_seen_written: dict[str, dt.datetime] = {}


def seen(client_id: str) -> None:
    """Note that a kiosk talked to us (the admin console shows last-seen times, to the minute)."""
    now = utcnow()
    written = _seen_written.get(client_id)
    if written is not None and written <= now < written + SEEN_RESOLUTION:
        return
    _seen_written[client_id] = now
    db.session.execute(
        update(Kiosk)
        .where(Kiosk.client_id == client_id,
               or_(Kiosk.last_seen_at.is_(None), Kiosk.last_seen_at < now - SEEN_RESOLUTION))
        .values(last_seen_at=now)
    )


def session_for(client_id: str, resident_id: str, started_at: dt.datetime) -> KioskSession:
    """The resident's session at this kiosk that began at ``started_at`` (the grant of
    their token), with their last touch recorded since."""
    last = db.session.scalar(
        select(func.max(TouchEvent.occurred_at))
        .where(TouchEvent.client_id == client_id, TouchEvent.resident_id == resident_id,
               TouchEvent.occurred_at >= started_at))
    return KioskSession(started_at, last)


def validate_batch(payload: Any, now: dt.datetime | None = None,
                   not_before: dt.datetime | None = None,
                   session: KioskSession | None = None) -> list[ValidEvent]:
    """Check a whole batch before anything is stored; the first problem rejects it all.

    ``not_before`` is the grant of a resident's token (``oauth.tokens.origin``):
    a touch dated before the resident approved the kiosk was anonymous when it
    happened and must not be attached to them afterwards. ``session`` is the
    resident's session at the kiosk: a touch after it ended raises ``SessionEnded``.
    """
    now = now or utcnow()
    if session is not None and not_before is None:
        not_before = session.started_at
    limit = config.settings().touch_events_max_batch
    if not isinstance(payload, dict):
        raise TouchEventError("", "the body must be a JSON object")
    unknown = set(payload) - {"events"}
    if unknown:
        raise TouchEventError(sorted(unknown)[0], "unknown member")
    events = payload.get("events")
    if not isinstance(events, list):
        raise TouchEventError("events", "must be an array")
    if not events:
        raise TouchEventError("events", "must not be empty")
    if len(events) > limit:
        raise TouchEventError("events", f"at most {limit} events per request")
    valid: list[ValidEvent] = []
    seen_ids: dict[str, int] = {}
    latest, earliest = now + FUTURE_SKEW, now - MAX_AGE
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise TouchEventError(f"events[{i}]", "must be an object")
        if not event.keys() <= _MEMBERS:
            raise TouchEventError(f"events[{i}].{sorted(event.keys() - _MEMBERS)[0]}",
                                  "unknown member")
        occurred_at = _timestamp(event.get("occurred_at"), i)
        if occurred_at > latest:
            raise TouchEventError(f"events[{i}].occurred_at", "is in the future")
        if occurred_at < earliest:
            raise TouchEventError(f"events[{i}].occurred_at", "is older than 7 days")
        if not_before is not None and occurred_at < not_before:
            raise TouchEventError(f"events[{i}].occurred_at",
                                  "is before the resident approved this token; send earlier "
                                  "touches anonymously")
        target = event.get("target")
        if not isinstance(target, str) or len(target) > MAX_TARGET \
                or not target.isprintable() or not (target := target.strip()):
            raise TouchEventError(f"events[{i}].target", f"must be a content id of 1 to "
                                                         f"{MAX_TARGET} printable characters")
        event_id = event.get("event_id")
        if event_id is not None:
            if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID \
                    or not event_id.isprintable():
                raise TouchEventError(f"events[{i}].event_id",
                                      f"must be a string of 1 to {MAX_EVENT_ID} printable "
                                      f"characters")
            if event_id in seen_ids:
                raise TouchEventError(f"events[{i}].event_id",
                                      f"repeats events[{seen_ids[event_id]}].event_id")
            seen_ids[event_id] = i
        valid.append(ValidEvent(occurred_at, target, event_id))
    if session is not None:
        check_session(valid, session)
    return valid


def check_session(events: list[ValidEvent], session: KioskSession) -> None:
    """Walk the touches in time order from the session's last activity: a gap longer
    than ``kiosk_idle_timeout``, or a touch later than ``kiosk_max_session`` after the
    approval, means the resident had left; that touch is not theirs."""
    settings = config.settings()
    idle = dt.timedelta(seconds=settings.kiosk_idle_timeout)
    end = session.started_at + dt.timedelta(seconds=settings.kiosk_max_session)
    last = session.last_activity
    for i, event in sorted(enumerate(events), key=lambda pair: pair[1].occurred_at):
        where = f"events[{i}].occurred_at"
        if event.occurred_at > end:
            raise SessionEnded(where, f"is after the resident's session at this kiosk ended "
                                      f"({settings.kiosk_max_session} s after the approval); "
                                      f"send it anonymously", "max_length")
        if event.occurred_at - last > idle:
            raise SessionEnded(where, f"is after the resident's session at this kiosk ended "
                                      f"({settings.kiosk_idle_timeout} s without a touch); "
                                      f"send it anonymously", "idle")
        last = max(last, event.occurred_at)


def end_session(client: Client, resident_id: str, reason: str) -> dict[str, int]:
    """The resident's session at the kiosk is over (idle or at its maximum length):
    their tokens at this kiosk die, so nothing more is recorded against them."""
    revoked = access.revoke_grants(resident=resident_id, client=client,
                                   reason="kiosk_session_end")
    record(AuditTag.KIOSK_SESSION_END, client_id=client.id, company_id=client.company_id,
           resident_id=resident_id, reason=reason, **revoked)
    return revoked


def _timestamp(value: Any, i: int) -> dt.datetime:
    try:
        return inputs.iso_instant(value)
    except ValueError as error:
        raise TouchEventError(f"events[{i}].occurred_at", str(error)) from None


def store(client: Client, resident_id: str | None, events: list[ValidEvent]) -> tuple[int, int]:
    """Store a validated batch; returns (stored, duplicates). Idempotent per event_id.

    The batch travels as one JSON parameter that the database expands into rows
    (``_BATCH``), and the rows inserted are the statement's row count: plain, or where
    the batch meets events already stored, with ``ON CONFLICT DO NOTHING``, which
    counts only the rows really inserted (``idp.db.insert_new``). Events without an id
    never conflict (NULLs are distinct in the unique constraint).
    """
    now = utcnow()
    dialect = db.session.get_bind().dialect
    statements, when = _BATCH[dialect.name == "postgresql"], _instant(dialect)
    batch = json.dumps([(when(e.occurred_at), e.target, e.event_id) for e in events],
                       ensure_ascii=False, separators=(",", ":"))
    stored = insert_new(db.session, statements.plain, statements.skipping, {
        "client_id": client.id, "resident_id": resident_id, "received_at": now,
        "events": batch}, _UNIQUE_EVENT)
    duplicates = len(events) - stored
    record(AuditTag.TOUCH_EVENTS, client_id=client.id, company_id=client.company_id,
           resident_id=resident_id, stored=stored, duplicates=duplicates)
    return stored, duplicates


# A batch is one constant statement with one JSON parameter, an array of
# [occurred_at, target, event_id] arrays, expanded into rows by the database
# (PostgreSQL's json_array_elements, SQLite's json_each). A multi-row VALUES list was a
# new SQL text of hundreds of placeholders per batch; three arrays (PostgreSQL) had the
# driver dump each of the 300 values in Python, and RETURNING the ids read 100 rows back
# (docs/performance.md). Each comes plain and ``skipping`` the events already stored
# (``idp.db.insert_new``: a retried batch).
_RECEIVED = bindparam("received_at", type_=TouchEvent.__table__.c.received_at.type)
_UNIQUE_EVENT = "uq_touch_events_client_id_event_id"
_SKIPPING = " ON CONFLICT (client_id, event_id) DO NOTHING"


class _Batch:
    __slots__ = ("plain", "skipping")

    def __init__(self, sql: str) -> None:
        self.plain = text(sql).bindparams(_RECEIVED)
        self.skipping = text(sql + _SKIPPING).bindparams(_RECEIVED)


_BATCH = {
    True: _Batch(
        "INSERT INTO touch_events "
        "(client_id, resident_id, occurred_at, target, event_id, received_at) "
        "SELECT :client_id, :resident_id, CAST(e.value ->> 0 AS timestamptz), "
        "e.value ->> 1, e.value ->> 2, :received_at "
        "FROM json_array_elements(CAST(:events AS json)) AS e(value)"),
    # SQLite: ``WHERE true`` tells its parser that ON CONFLICT is the upsert clause.
    False: _Batch(
        "INSERT INTO touch_events "
        "(client_id, resident_id, occurred_at, target, event_id, received_at) "
        "SELECT :client_id, :resident_id, e.value ->> 0, e.value ->> 1, e.value ->> 2, "
        ":received_at FROM json_each(:events) AS e WHERE true"),
}


@functools.cache
def _instant(dialect) -> Callable[[dt.datetime], str]:
    """How the batch writes a time: ISO 8601 with its offset for PostgreSQL to cast; for
    SQLite, the text the column's own type stores (what every query compares with)."""
    if dialect.name == "postgresql":
        return dt.datetime.isoformat
    column_type = TouchEvent.__table__.c.occurred_at.type
    return column_type.dialect_impl(dialect).bind_processor(dialect)


def events_for_resident(resident_id: str, limit: int = 100, offset: int = 0) -> list[dict]:
    """A resident's touch events, newest first, with the kiosk and where it stands."""
    rows = db.session.execute(
        select(TouchEvent, Kiosk, Client)
        .join(Client, Client.id == TouchEvent.client_id)
        .outerjoin(Kiosk, Kiosk.client_id == TouchEvent.client_id)
        .where(TouchEvent.resident_id == resident_id)
        .order_by(TouchEvent.occurred_at.desc(), TouchEvent.id.desc())
        .limit(limit).offset(offset)
    ).all()
    return [{
        "occurred_at": event.occurred_at.isoformat(),
        "target": event.target,
        "kiosk": client.name,
        "company": client.company.name,
        "location": kiosk.location if kiosk else None,
    } for event, kiosk, client in rows]


# ---- the kiosks' part of privacy operations (idp.privacy) -----------------------------

def export_resident(resident_id: str, names) -> dict:
    """The resident's part of a data export: the touches kiosks recorded against them,
    oldest first, with where the kiosk stands. ``names.service`` names a client."""
    return {"touch_events": [
        {"occurred_at": t.occurred_at, "received_at": t.received_at,
         **names.service(t.client_id), "location": location, "target": t.target,
         "event_id": t.event_id}
        for t, location in db.session.execute(
            select(TouchEvent, Kiosk.location)
            .outerjoin(Kiosk, Kiosk.client_id == TouchEvent.client_id)
            .where(TouchEvent.resident_id == resident_id)
            .order_by(TouchEvent.occurred_at, TouchEvent.id))
    ]}


def forget_resident(resident_id: str) -> dict[str, int]:
    """The kiosks' part of an account deletion: touch events lose their link to the
    resident and count as anonymous touches in the city aggregates, with no attribute."""
    return {"touch_events_anonymised": db.session.execute(
        update(TouchEvent).where(TouchEvent.resident_id == resident_id).values(resident_id=None)
        .execution_options(synchronize_session=False)).rowcount}


def history_rows(resident_id: str, company_id: str | None = None) -> Select:
    """The resident's usage record from the kiosks (``idp.privacy.history``): ids and
    times of their touch events, at one company's kiosks if given."""
    query = (select(TouchEvent.id.label("row_id"), TouchEvent.occurred_at.label("at"))
             .where(TouchEvent.resident_id == resident_id))
    if company_id:
        query = (query.join(Client, Client.id == TouchEvent.client_id)
                 .where(Client.company_id == company_id))
    return query


def history_companies(resident_id: str) -> Select:
    """The companies whose kiosks recorded the resident's touches."""
    return (select(Client.company_id).join(TouchEvent, TouchEvent.client_id == Client.id)
            .where(TouchEvent.resident_id == resident_id))


def history_events(row_ids) -> dict[int, tuple[TouchEvent, Client, Kiosk | None]]:
    """The touch events of a usage-record page, by id, with their kiosk's client and
    kiosk row."""
    if not row_ids:
        return {}
    return {event.id: (event, client, kiosk) for event, client, kiosk in db.session.execute(
        select(TouchEvent, Client, Kiosk)
        .join(Client, Client.id == TouchEvent.client_id)
        .outerjoin(Kiosk, Kiosk.client_id == TouchEvent.client_id)
        .where(TouchEvent.id.in_(row_ids)))}
