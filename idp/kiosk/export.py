"""The de-identified city export: k-anonymous aggregates of touch events.

Per kiosk and hour (Asia/Tokyo): the number of touches (anonymous ones
included) and of distinct residents, with breakdowns of residents by age
band, gender and municipality. Nothing leaves below k residents:

1. a kiosk-hour with fewer than k distinct residents reports touches only;
2. a breakdown cell with fewer than k residents is suppressed;
3. complementary suppression: if the suppressed cells of a breakdown add up
   to fewer than k, the next smallest cells are suppressed as well, so a
   suppressed value can never be recovered by subtraction from the total.

No identifier, pairwise subject, raw timestamp or content id leaves. A resident who
opted out of the city's statistics (``idp.accounts.statistics``) counts as an anonymous
touch: in no resident count and no breakdown.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from zoneinfo import ZoneInfo

from sqlalchemy import case
from sqlalchemy import select

from idp.accounts import statistics
from idp.accounts.models import Resident
from idp.clients.models import Client
from idp.extensions import db
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent
from idp.spreadsheet import SafeWriter

TIMEZONE = ZoneInfo("Asia/Tokyo")
DIMENSIONS = ("age_band", "gender", "municipality")


@dataclass
class Cell:
    kiosk: str
    hour: str
    touches: int = 0
    residents: set[str] = field(default_factory=set)
    attributes: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: {d: defaultdict(set) for d in DIMENSIONS})


def age_band(birth_year: int | None, year: int) -> str:
    if birth_year is None:
        return "unknown"
    age = year - birth_year
    if age >= 80:
        return "80+"
    low = max(age, 0) // 10 * 10
    return f"{low}-{low + 9}"


def suppress(counts: dict[str, int], k: int) -> dict[str, int]:
    """Cells with at least k, after primary and complementary suppression."""
    kept = {value: n for value, n in counts.items() if n >= k}
    hidden = sum(n for value, n in counts.items() if value not in kept)
    for value in sorted(kept, key=lambda v: (kept[v], v)):
        if hidden == 0 or hidden >= k:
            break
        hidden += kept.pop(value)
    return dict(sorted(kept.items()))


def city_stats(start: dt.date, end: dt.date, k: int) -> dict:
    """Aggregates for [start, end] (local dates, inclusive)."""
    if k < 2:
        raise ValueError("k must be at least 2")
    if end < start:
        raise ValueError("--to must not be before --from")
    begin = dt.datetime.combine(start, dt.time(), TIMEZONE)
    finish = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), TIMEZONE)
    rows = db.session.execute(
        select(TouchEvent.client_id, TouchEvent.occurred_at,
               case((statistics.opted_in(), TouchEvent.resident_id), else_=None),
               Resident.birth_year, Resident.gender, Resident.locality, Kiosk.location,
               Client.name)
        .join(Client, Client.id == TouchEvent.client_id)
        .outerjoin(Kiosk, Kiosk.client_id == TouchEvent.client_id)
        .outerjoin(Resident, Resident.id == TouchEvent.resident_id)
        .where(TouchEvent.occurred_at >= begin, TouchEvent.occurred_at < finish)
    ).all()
    cells: dict[tuple[str, str], Cell] = {}
    for client_id, occurred_at, resident_id, birth_year, gender, locality, location, name in rows:
        local = occurred_at.astimezone(TIMEZONE)
        hour = local.replace(minute=0, second=0, microsecond=0).isoformat()
        kiosk = location or name
        cell = cells.setdefault((client_id, hour), Cell(kiosk, hour))
        cell.touches += 1
        if resident_id is not None:
            cell.residents.add(resident_id)
            cell.attributes["age_band"][age_band(birth_year, local.year)].add(resident_id)
            cell.attributes["gender"][gender or "unknown"].add(resident_id)
            cell.attributes["municipality"][locality or "unknown"].add(resident_id)
    out = []
    for cell in sorted(cells.values(), key=lambda c: (c.kiosk, c.hour)):
        entry = {"kiosk": cell.kiosk, "hour": cell.hour, "touches": cell.touches,
                 "residents": None, "breakdowns": {}}
        if len(cell.residents) >= k:
            entry["residents"] = len(cell.residents)
            for dimension in DIMENSIONS:
                counts = {v: len(ids) for v, ids in cell.attributes[dimension].items()}
                entry["breakdowns"][dimension] = suppress(counts, k)
        out.append(entry)
    return {"from": start.isoformat(), "to": end.isoformat(), "timezone": str(TIMEZONE),
            "k": k, "cells": out}


def to_csv(stats: dict) -> str:
    """Long format: one row per published number; suppressed numbers have no row.

    Kiosk names and locations are admin input: formula-like cells are neutralised
    (``idp.spreadsheet``), as in the audit and usage CSVs."""
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(["kiosk", "hour", "measure", "dimension", "value", "count"])
    for cell in stats["cells"]:
        writer.writerow([cell["kiosk"], cell["hour"], "touches", "", "", cell["touches"]])
        if cell["residents"] is not None:
            writer.writerow([cell["kiosk"], cell["hour"], "residents", "", "",
                             cell["residents"]])
        for dimension, counts in cell["breakdowns"].items():
            for value, count in counts.items():
                writer.writerow([cell["kiosk"], cell["hour"], "residents", dimension, value,
                                 count])
    return buffer.getvalue()
