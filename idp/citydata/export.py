"""The downtown database export: per area and time bucket, touches, sensor counts by
direction and de-identified breakdowns of the residents behind the touches.

``city_stats(start, end, k, granularity)`` first seals every bucket of the window not
sealed yet (``seal``: counts computed once, kept in ``city_seals``), then publishes the
sealed counts through the rules of ``idp.citydata.deidentify``:

1. an area-bucket reports its touches (anonymous ones included) and its sensor counts
   per direction: counts of events, not of people;
2. the number of distinct residents is published only if it is at least k, and only
   then are they broken down (profile and registered data, ``attributes``);
3. each breakdown value needs k residents, with complementary suppression;
4. a breakdown of a sensitive category needs l distinct known values (l-diversity);
5. the residents left out because they opted out of statistics are counted only when
   that count is itself at least k.

Areas are the devices' location labels (a kiosk's or a sensor's ``location``; the
client's name when it has none); devices with the same label share an area. No
identifier, pairwise subject, raw timestamp or content id leaves.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import hashlib
import hmac
import io
from collections import defaultdict
from typing import Any

from flask import current_app
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from idp import config
from idp.accounts import statistics
from idp.accounts.models import Resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.citydata import attributes
from idp.citydata import buckets
from idp.citydata import deidentify
from idp.citydata.buckets import TIMEZONE
from idp.citydata.models import CityContribution
from idp.citydata.models import CitySeal
from idp.clients.models import Client
from idp.db import utcnow
from idp.extensions import db
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent
from idp.sensors.models import Sensor
from idp.sensors.models import SensorCount
from idp.spreadsheet import SafeWriter

# 1: each granularity sealed from the live data at its first export. 2: hours are sealed
# with their residents' contributions, and coarser buckets computed from those.
METHOD = 2
CSV_HEADER = ["area", "period", "measure", "dimension", "value", "count"]


class ExportError(ValueError):
    pass


def pseudonym(resident_id: str) -> str:
    """The resident in ``city_contributions``: HMAC-SHA-256 under the server secret, so
    one resident's hours join into one person of a day, week or month, and the row
    leads back to no one without the secret (``secret_key``)."""
    key = current_app.config["SECRET_KEY"].encode("utf-8")
    mac = hmac.new(key, f"city:{resident_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode("ascii")


def forget_resident(resident_id: str) -> dict[str, int]:
    """An account deletion: the resident's frozen contributions go (their values attached
    to times and places could single them out again). Sealed counts stay, as numbers in
    totals; a day, week or month computed later no longer counts them in those hours
    (docs/city-export.md, "Limits")."""
    deleted = db.session.execute(
        delete(CityContribution).where(CityContribution.person == pseudonym(resident_id)))
    return {"city_contributions_deleted": deleted.rowcount}


def _area() -> dict:
    # people: resident → their breakdown values, or None if opted out of statistics.
    return {"touches": 0, "sensors": defaultdict(int), "people": {}}


def _observe(spans: list[tuple[dt.datetime, dt.datetime]],
             now: dt.datetime) -> list[dict[str, Any]]:
    """What each bucket in ``spans`` (consecutive, in order) holds in the data as it
    stands now: per area, touches, sensor counts by direction, and each resident behind
    a touch with their breakdown values (None when opted out)."""
    starts = [start for start, _ in spans]
    begin, finish = spans[0][0], spans[-1][1]
    found: list[dict[str, dict]] = [defaultdict(_area) for _ in spans]
    opted: dict[str, bool] = {}

    def index(at: dt.datetime) -> int:
        return bisect.bisect_right(starts, at) - 1

    touches = db.session.execute(
        select(TouchEvent.occurred_at, TouchEvent.resident_id,
               case((statistics.opted_in(), True), else_=False), Kiosk.location, Client.name)
        .join(Client, Client.id == TouchEvent.client_id)
        .outerjoin(Kiosk, Kiosk.client_id == TouchEvent.client_id)
        .outerjoin(Resident, Resident.id == TouchEvent.resident_id)
        .where(TouchEvent.occurred_at >= begin, TouchEvent.occurred_at < finish))
    for occurred_at, resident_id, opted_in, location, name in touches:
        cell = found[index(occurred_at)][location or name]
        cell["touches"] += 1
        if resident_id is not None:
            cell["people"][resident_id] = None
            opted[resident_id] = opted_in
    counts = db.session.execute(
        select(SensorCount.interval_start, SensorCount.direction, SensorCount.count,
               Sensor.location, Client.name)
        .join(Sensor, Sensor.client_id == SensorCount.client_id)
        .join(Client, Client.id == Sensor.client_id)
        .where(SensorCount.interval_start >= begin, SensorCount.interval_start < finish))
    for interval_start, direction, count, location, name in counts:
        found[index(interval_start)][location or name]["sensors"][direction] += count

    categories = attributes.statistics_categories()
    dimensions = [*attributes.PROFILE, *(c.key for c in categories)]
    sensitive = sorted(c.key for c in categories if c.sensitivity == "sensitive")
    people = attributes.collect((rid for rid, counted in opted.items() if counted),
                                categories, now)
    observed = []
    for (start, _), bucket in zip(spans, found, strict=True):
        year = start.astimezone(TIMEZONE).year
        for cell in bucket.values():
            for rid in cell["people"]:
                if opted[rid]:
                    cell["people"][rid] = {d: people[rid].of(d, year) for d in dimensions}
        observed.append({"areas": bucket, "sensitive": sensitive})
    return observed


def _counts(areas: dict[str, dict], sensitive: list[str]) -> dict[str, Any]:
    """A bucket's counts (what is sealed): per area, touches, sensor counts, the residents
    counted and left out, and the breakdown of those counted."""
    out = {}
    for area, cell in sorted(areas.items()):
        counted = [values for values in cell["people"].values() if values is not None]
        breakdowns: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for values in counted:
            for dimension, items in values.items():
                for value in items:
                    breakdowns[dimension][value] += 1
        out[area] = {"touches": cell["touches"], "residents": len(counted),
                     "left_out": len(cell["people"]) - len(counted),
                     "sensors": dict(sorted(cell["sensors"].items())),
                     "dimensions": {d: dict(sorted(v.items()))
                                    for d, v in breakdowns.items() if v}}
    return {"areas": out, "sensitive": sensitive}


def _compute(spans: list[tuple[dt.datetime, dt.datetime]],
             now: dt.datetime) -> list[dict[str, Any]]:
    """The counts of each bucket in ``spans``, from the data as it stands now (what an
    export would publish without seals)."""
    return [_counts(bucket["areas"], bucket["sensitive"]) for bucket in _observe(spans, now)]


def _runs(spans: list[tuple[dt.datetime, dt.datetime]]) -> list[list[tuple]]:
    """Consecutive spans grouped, to read each run with one query per table."""
    runs: list[list[tuple[dt.datetime, dt.datetime]]] = []
    for span in spans:
        if runs and runs[-1][-1][1] == span[0]:
            runs[-1].append(span)
        else:
            runs.append([span])
    return runs


def _freeze(start: dt.datetime, areas: dict[str, dict]) -> None:
    """Keep what each resident contributed to the sealed hour ``start``."""
    rows = [{"hour_start": start, "area": area, "person": pseudonym(rid), "values": values}
            for area, cell in sorted(areas.items())
            for rid, values in sorted(cell["people"].items())]
    if rows:
        db.session.execute(insert(CityContribution), rows)


def _seal_hours(spans: list[tuple[dt.datetime, dt.datetime]],
                now: dt.datetime) -> dict[dt.datetime, CitySeal]:
    """The seal of every hour, sealing (once, with its contributions) those not sealed."""
    starts = [start for start, _ in spans]
    rows = {row.bucket_start: row for row in db.session.scalars(
        select(CitySeal).where(CitySeal.granularity == "hour",
                               CitySeal.bucket_start >= starts[0],
                               CitySeal.bucket_start <= starts[-1]))}
    for run in _runs([span for span in spans if span[0] not in rows]):
        for (start, _), bucket in zip(run, _observe(run, now), strict=True):
            rows[start] = _insert("hour", start, _counts(bucket["areas"], bucket["sensitive"]),
                                  now, bucket["areas"])
    # An hour sealed by method 1 kept no contributions: freeze them now, once (its
    # published counts stay as sealed; docs/city-export.md, "Limits").
    legacy = [(start, end) for start, end in spans if rows[start].method < 2]
    for run in _runs(legacy):
        for (start, _), bucket in zip(run, _observe(run, now), strict=True):
            claimed = db.session.execute(
                update(CitySeal).where(CitySeal.id == rows[start].id, CitySeal.method < 2)
                .values(method=METHOD)).rowcount
            if claimed == 1:
                _freeze(start, bucket["areas"])
    return rows


def _from_hours(span: tuple[dt.datetime, dt.datetime],
                hours: dict[dt.datetime, CitySeal]) -> dict[str, Any]:
    """A day, week or month from its sealed hours only: touches and sensor counts added
    up, and each resident counted once, as their first hour in the bucket froze them."""
    start, end = span
    areas: dict[str, dict] = defaultdict(_area)
    sensitive: set[str] = set()
    for row in hours.values():
        if not start <= row.bucket_start < end:
            continue
        sensitive.update(row.counts.get("sensitive", []))
        for area, counts in row.counts["areas"].items():
            cell = areas[area]
            cell["touches"] += counts["touches"]
            for direction, count in counts["sensors"].items():
                cell["sensors"][direction] += count
    for area, person, values in db.session.execute(
            select(CityContribution.area, CityContribution.person, CityContribution.values)
            .where(CityContribution.hour_start >= start, CityContribution.hour_start < end)
            .order_by(CityContribution.hour_start, CityContribution.id)):
        areas[area]["people"].setdefault(person, values)
    return _counts(areas, sorted(sensitive))


def seal(spans: list[tuple[dt.datetime, dt.datetime]], granularity: str,
         now: dt.datetime | None = None) -> dict[dt.datetime, CitySeal]:
    """The seal of every bucket, computing (once) those not sealed yet: an hour from the
    data as it stands, anything coarser from its hours' seals (``_from_hours``), so no
    two granularities of one period can differ by a change made between their exports."""
    now = now or utcnow()
    if granularity == "hour":
        return _seal_hours(spans, now)
    starts = [start for start, _ in spans]
    rows = {row.bucket_start: row for row in db.session.scalars(
        select(CitySeal).where(CitySeal.granularity == granularity,
                               CitySeal.bucket_start >= starts[0],
                               CitySeal.bucket_start <= starts[-1]))}
    missing = [span for span in spans if span[0] not in rows]
    if not missing:
        return rows
    hours = _seal_hours([hour for span in missing for hour in buckets.hours(*span)], now)
    for span in missing:
        rows[span[0]] = _insert(granularity, span[0], _from_hours(span, hours), now)
    return rows


def _insert(granularity: str, start: dt.datetime, counts: dict, now: dt.datetime,
            contributions: dict[str, dict] | None = None) -> CitySeal:
    """Add a seal (an hour's with its contributions); when another export sealed the
    bucket meanwhile, theirs stands."""
    row = CitySeal(granularity=granularity, bucket_start=start, counts=counts, method=METHOD,
                   sealed_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
            if contributions is not None:
                _freeze(start, contributions)
    except IntegrityError:
        return db.session.scalars(select(CitySeal).where(
            CitySeal.granularity == granularity, CitySeal.bucket_start == start)).one()
    return row


def _publish(area: str, period: str, counts: dict, k: int, l_diversity: int,
             sensitive: set[str]) -> dict[str, Any]:
    residents = deidentify.at_least(counts["residents"], k)
    entry: dict[str, Any] = {
        "area": area, "period": period, "touches": counts["touches"],
        "sensors": counts["sensors"], "residents": residents,
        "left_out": deidentify.at_least(counts["left_out"], k), "breakdowns": {}}
    if residents is None:
        return entry
    for dimension, values in counts["dimensions"].items():
        published = deidentify.breakdown(values, k, l_diversity, dimension in sensitive)
        if published is not None:
            entry["breakdowns"][dimension] = published
    return entry


def parameters(k: int | None, l_diversity: int | None) -> tuple[int, int]:
    """k and l of an export: the settings, or stricter values asked for (never laxer)."""
    settings = config.settings()
    k = settings.city_export_k if k is None else k
    l_diversity = settings.city_export_l if l_diversity is None else l_diversity
    if k < settings.city_export_k:
        raise ExportError(f"k must be at least city_export_k ({settings.city_export_k})")
    if l_diversity < settings.city_export_l:
        raise ExportError(f"l must be at least city_export_l ({settings.city_export_l})")
    return k, l_diversity


def city_stats(start: dt.date, end: dt.date, k: int | None = None, *,
               granularity: str = "hour", l_diversity: int | None = None,
               now: dt.datetime | None = None, via: str = "cli") -> dict[str, Any]:
    """The release for [start, end] (local days, inclusive): whole closed buckets."""
    now = now or utcnow()
    k, l_diversity = parameters(k, l_diversity)
    try:
        spans = buckets.buckets(start, end, granularity, now.astimezone(TIMEZONE).date())
    except buckets.WindowError as error:
        raise ExportError(str(error)) from None
    seals = seal(spans, granularity, now)
    cells = []
    for bucket_start, _ in spans:
        row = seals[bucket_start]
        sensitive = set(row.counts.get("sensitive", []))
        period = buckets.label(bucket_start, granularity)
        for area, counts in row.counts["areas"].items():
            cells.append(_publish(area, period, counts, k, l_diversity, sensitive))
    cells.sort(key=lambda c: (c["area"], c["period"]))
    record(AuditTag.CITY_EXPORT, actor="cli" if via == "cli" else None, via=via,
           start=start.isoformat(), end=end.isoformat(), granularity=granularity, k=k,
           l=l_diversity, cells=len(cells))
    return {"from": start.isoformat(), "to": end.isoformat(), "timezone": str(TIMEZONE),
            "granularity": granularity, "k": k, "l": l_diversity, "method": METHOD,
            "cells": cells}


def to_csv(stats: dict) -> str:
    """Long format: one row per published number; suppressed numbers have no row.

    Areas are admin input and breakdown values residents' or companies' input:
    formula-like cells are neutralised (``idp.spreadsheet``)."""
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(CSV_HEADER)
    for cell in stats["cells"]:
        where = [cell["area"], cell["period"]]
        writer.writerow([*where, "touches", "", "", cell["touches"]])
        for direction, count in cell["sensors"].items():
            writer.writerow([*where, "sensor_count", "direction", direction, count])
        if cell["residents"] is not None:
            writer.writerow([*where, "residents", "", "", cell["residents"]])
        if cell["left_out"] is not None:
            writer.writerow([*where, "left_out", "", "", cell["left_out"]])
        for dimension, counts in cell["breakdowns"].items():
            for value, count in counts.items():
                writer.writerow([*where, "residents", dimension, value, count])
    return buffer.getvalue()
