"""Sensors: registration by admins, and the counts they post.

A sensor is a confidential client of its company with the client_credentials
grant and the ``sensor_counts`` scope only, plus where it stands and what it
watches. Its counts carry no identity: ``validate_batch`` refuses any member it
does not know (``sub``, ``resident``, a face id …), and the API refuses a token
that speaks for a resident.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import update

from idp import geo
from idp import inputs
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients import service as clients
from idp.clients.models import Client
from idp.db import dialect_insert
from idp.db import utcnow
from idp.extensions import db
from idp.sensors.models import Sensor
from idp.sensors.models import SensorCount

SENSOR_GRANT_TYPES = ["client_credentials"]
SENSOR_SCOPES = ["sensor_counts"]
DIRECTIONS = ("in", "out", "north", "south", "east", "west")
MAX_BATCH = 1000
MAX_COUNT = 1_000_000
MAX_INTERVAL = 86400
# A sensor's clock may lag; an interval cannot start in the future beyond this.
FUTURE_SKEW = dt.timedelta(minutes=5)
# Sensors buffer while offline, but not forever.
MAX_AGE = dt.timedelta(days=7)
COUNT_MEMBERS = frozenset({"interval_start", "interval_seconds", "direction", "count"})
DEFAULT_PURPOSE = ("通行量と通行方向を時間帯ごとに数え、防災支援とまちづくり・政策のための統計に"
                   "利用します。映像や個人を識別する情報は記録しません。")
DEFAULT_PURPOSE_EN = ("Counts passers-by and their direction per time interval, for the city's "
                      "disaster support and policy statistics. No images and nothing that "
                      "identifies a person are recorded.")


class SensorError(clients.ClientError):
    """A sensor's registration or settings were refused."""


class SensorCountError(ValueError):
    """A rejected batch; ``field`` names the offending member (as the touch-event API)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ValidCount:
    interval_start: dt.datetime
    interval_seconds: int
    direction: str
    count: int


@dataclass(frozen=True)
class Placement:
    """Where a sensor stands and what the public is told about it."""

    location: str
    latitude: float | None = None
    longitude: float | None = None
    area: str = ""
    retention_days: int = 365
    contact: str = ""


def checked_placement(placement: Placement) -> Placement:
    location = (placement.location or "").strip()
    if not location or len(location) > 200:
        raise SensorError("location must be 1 to 200 characters")
    latitude, longitude = checked_coordinates(placement.latitude, placement.longitude)
    area = (placement.area or "").strip()
    contact = (placement.contact or "").strip()
    if len(area) > 200 or len(contact) > 200:
        raise SensorError("area and contact must be at most 200 characters")
    retention = placement.retention_days
    if isinstance(retention, bool) or not isinstance(retention, int) \
            or not 1 <= retention <= 3650:
        raise SensorError("the retention period must be 1 to 3650 days")
    return Placement(location, latitude, longitude, area, retention, contact)


def checked_coordinates(latitude: float | None,
                        longitude: float | None) -> tuple[float | None, float | None]:
    """WGS 84 degrees, both or neither."""
    try:
        return geo.coordinates(latitude, longitude)
    except ValueError as error:
        raise SensorError(str(error)) from None


def create_sensor(company_id: str, name: str, placement: Placement, *, purpose: str = "",
                  purpose_en: str = "", actor: str | None = None
                  ) -> tuple[Client, str, Sensor]:
    """A confidential client_credentials client with ``sensor_counts``, and its place."""
    placement = checked_placement(placement)
    client, secret = clients.register_client(
        company_id, name, grant_types=list(SENSOR_GRANT_TYPES), scopes=list(SENSOR_SCOPES),
        purpose=purpose or DEFAULT_PURPOSE, purpose_en=purpose_en or DEFAULT_PURPOSE_EN,
        actor=actor)
    sensor = Sensor(client=client, **vars(placement))
    db.session.add(sensor)
    db.session.flush()
    record(AuditTag.SENSOR_CREATE, actor=actor, client_id=client.id,
           company_id=client.company_id, location=sensor.location, area=sensor.area,
           retention_days=sensor.retention_days)
    return client, secret, sensor


def update_sensor(client_id: str, placement: Placement, actor: str | None = None) -> Sensor:
    """Move a sensor, or change what the public is told about it."""
    client = clients.editable_client(client_id)
    sensor = db.session.get(Sensor, client.id)
    if sensor is None:
        raise SensorError(f"client {client.id} is not a sensor")
    placement = checked_placement(placement)
    previous = {k: getattr(sensor, k) for k, v in vars(placement).items()
                if getattr(sensor, k) != v}
    if previous:
        for key in previous:
            setattr(sensor, key, getattr(placement, key))
        record(AuditTag.SENSOR_UPDATE, actor=actor, client_id=client.id,
               company_id=client.company_id, previous=previous, location=sensor.location,
               area=sensor.area, retention_days=sensor.retention_days)
    return sensor


def sensors() -> list[Sensor]:
    return list(db.session.scalars(select(Sensor).order_by(Sensor.created_at,
                                                           Sensor.client_id)))


def sensor_for(client_id: str) -> Sensor | None:
    return db.session.get(Sensor, client_id)


SEEN_RESOLUTION = dt.timedelta(minutes=1)


def seen(client_id: str) -> None:
    """Note that a sensor talked to us (to the minute, as kiosks)."""
    now = utcnow()
    db.session.execute(
        update(Sensor)
        .where(Sensor.client_id == client_id,
               or_(Sensor.last_seen_at.is_(None), Sensor.last_seen_at < now - SEEN_RESOLUTION))
        .values(last_seen_at=now))


def validate_batch(payload: Any, now: dt.datetime | None = None) -> list[ValidCount]:
    """Check a whole batch before anything is stored; the first problem rejects it all.
    Only the four members of a count are accepted: nothing that could name a person."""
    now = now or utcnow()
    if not isinstance(payload, dict):
        raise SensorCountError("", "the body must be a JSON object")
    unknown = set(payload) - {"counts"}
    if unknown:
        raise SensorCountError(sorted(unknown)[0], "unknown member; sensor counts carry no "
                                                   "identity")
    counts = payload.get("counts")
    if not isinstance(counts, list):
        raise SensorCountError("counts", "must be an array")
    if not counts:
        raise SensorCountError("counts", "must not be empty")
    if len(counts) > MAX_BATCH:
        raise SensorCountError("counts", f"at most {MAX_BATCH} counts per request")
    valid: list[ValidCount] = []
    keys: dict[tuple[dt.datetime, str], int] = {}
    for i, item in enumerate(counts):
        where = f"counts[{i}]"
        if not isinstance(item, dict):
            raise SensorCountError(where, "must be an object")
        extra = set(item) - COUNT_MEMBERS
        if extra:
            raise SensorCountError(f"{where}.{sorted(extra)[0]}",
                                   "unknown member; sensor counts carry no identity")
        missing = sorted(COUNT_MEMBERS - set(item))
        if missing:
            raise SensorCountError(f"{where}.{missing[0]}", "is required")
        start = _timestamp(item["interval_start"], f"{where}.interval_start")
        if start > now + FUTURE_SKEW:
            raise SensorCountError(f"{where}.interval_start", "is in the future")
        if start < now - MAX_AGE:
            raise SensorCountError(f"{where}.interval_start", "is older than 7 days")
        seconds = item["interval_seconds"]
        if not _integer(seconds) or not 1 <= seconds <= MAX_INTERVAL:
            raise SensorCountError(f"{where}.interval_seconds",
                                   f"must be an integer from 1 to {MAX_INTERVAL}")
        direction = item["direction"]
        if direction not in DIRECTIONS:
            raise SensorCountError(f"{where}.direction",
                                   "must be one of " + ", ".join(DIRECTIONS))
        count = item["count"]
        if not _integer(count) or not 0 <= count <= MAX_COUNT:
            raise SensorCountError(f"{where}.count", f"must be an integer from 0 to {MAX_COUNT}")
        key = (start, direction)
        if key in keys:
            raise SensorCountError(where, f"repeats the interval and direction of "
                                          f"counts[{keys[key]}]")
        keys[key] = i
        valid.append(ValidCount(start, seconds, direction, count))
    return valid


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _timestamp(value: Any, field: str) -> dt.datetime:
    try:
        return inputs.iso_instant(value)
    except ValueError as error:
        raise SensorCountError(field, str(error)) from None


def store(client: Client, counts: list[ValidCount]) -> tuple[int, int]:
    """Store a validated batch; returns (stored, replaced). A count for a (sensor,
    interval start, direction) already held replaces it: a sensor that resends a
    corrected interval is believed, and the answer says how many it replaced."""
    now = utcnow()
    keys = [(c.interval_start, c.direction) for c in counts]
    existing = set()
    for chunk in range(0, len(keys), 200):
        existing.update(db.session.execute(
            select(SensorCount.interval_start, SensorCount.direction)
            .where(SensorCount.client_id == client.id,
                   tuple_(SensorCount.interval_start, SensorCount.direction)
                   .in_(keys[chunk:chunk + 200]))).all())
    table = SensorCount.__table__
    insert = dialect_insert(db.session, table)
    db.session.execute(
        insert.on_conflict_do_update(
            index_elements=["client_id", "interval_start", "direction"],
            set_={"count": insert.excluded["count"],
                  "interval_seconds": insert.excluded.interval_seconds,
                  "updated_at": insert.excluded.updated_at}),
        [{"client_id": client.id, "interval_start": c.interval_start,
          "interval_seconds": c.interval_seconds, "direction": c.direction, "count": c.count,
          "received_at": now, "updated_at": now} for c in counts])
    held = {_key(e) for e in existing}
    replaced = sum(1 for key in keys if _key(key) in held)
    stored = len(counts) - replaced
    record(AuditTag.SENSOR_COUNTS, client_id=client.id, company_id=client.company_id,
           stored=stored, replaced=replaced)
    return stored, replaced


def _key(key: tuple[dt.datetime, str]) -> tuple[dt.datetime, str]:
    """SQLite hands back naive or aware datetimes by column type; compare in UTC."""
    start, direction = key
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    return start.astimezone(dt.UTC), direction


def counts_for(client_id: str, limit: int = 100) -> list[SensorCount]:
    """A sensor's latest counts, newest first (the console)."""
    return list(db.session.scalars(
        select(SensorCount).where(SensorCount.client_id == client_id)
        .order_by(SensorCount.interval_start.desc(), SensorCount.direction).limit(limit)))


def purge_expired(now: dt.datetime | None = None) -> int:
    """Delete every count older than its sensor's retention period (what /transparency
    promises); how many. ``idp worker`` runs it with the data exchange's housekeeping."""
    now = now or utcnow()
    deleted = 0
    for client_id, days in db.session.execute(select(Sensor.client_id, Sensor.retention_days)):
        deleted += db.session.execute(
            delete(SensorCount).where(SensorCount.client_id == client_id,
                                      SensorCount.interval_start < now - dt.timedelta(days=days))
            .execution_options(synchronize_session=False)).rowcount
    if deleted:
        record(AuditTag.SENSOR_COUNTS_EXPIRE, actor="worker", count=deleted)
    return deleted
