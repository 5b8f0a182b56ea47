"""The city's attributes of residents (seed 000: language, area of residence, gender,
income band, interests, birth year, household, occupation).

From the profile: ``age_band`` (ten-year bands of the birth year), ``gender`` and
``municipality`` (the locality registered). From registered data: one dimension per
category whose ``statistics`` flag is set and which is not retired, from the resident's
latest record of it that has not expired and is not disputed. Only residents who have
not opted out of statistics are ever passed in (``idp.accounts.statistics``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from idp.accounts.models import Resident
from idp.citydata.deidentify import UNKNOWN
from idp.exchange.models import Category
from idp.exchange.models import RegisteredRecord
from idp.extensions import db

PROFILE = ("age_band", "gender", "municipality")
# Bind parameters per IN (...) list: well under SQLite's and PostgreSQL's limits.
CHUNK = 500


@dataclass
class Attributes:
    birth_year: int | None
    # dimension → the resident's values in it (several for a list such as interests).
    values: dict[str, list[str]]

    def of(self, dimension: str, year: int) -> list[str]:
        if dimension == "age_band":
            return [age_band(self.birth_year, year)]
        return self.values.get(dimension) or [UNKNOWN]


def age_band(birth_year: int | None, year: int) -> str:
    if birth_year is None:
        return UNKNOWN
    age = year - birth_year
    if age >= 80:
        return "80+"
    low = max(age, 0) // 10 * 10
    return f"{low}-{low + 9}"


def statistics_categories() -> list[Category]:
    """Categories whose values may feed the city's statistics, in use."""
    return list(db.session.scalars(
        select(Category).where(Category.statistics.is_(True), Category.retired_at.is_(None))
        .order_by(Category.key)))


def values(category: str, value: Any) -> list[str]:
    """A registered value as breakdown values; [] when it has no statistical form.

    Areas of residence become ``prefecture/city``; a household becomes its number of
    members (``5+`` above four); a list gives one value per item; any other object
    (a category created later with an object schema) is not broken down."""
    if category == "prefecture" and isinstance(value, dict):
        parts = [str(value[p]) for p in ("prefecture", "city") if value.get(p)]
        return ["/".join(parts)] if parts else []
    if category == "household" and isinstance(value, dict):
        members = value.get("members")
        if not isinstance(members, int) or isinstance(members, bool):
            return []
        return ["5+" if members >= 5 else str(members)]
    if isinstance(value, list):
        return sorted({str(item) for item in value if isinstance(item, str | int)})
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    return []


def collect(resident_ids: Iterable[str], categories: list[Category],
            now: dt.datetime) -> dict[str, Attributes]:
    """Each resident's attributes as they stand now."""
    ids = sorted(set(resident_ids))
    keys = [c.key for c in categories]
    found: dict[str, Attributes] = {}
    latest: dict[tuple[str, str], dt.datetime] = {}
    for index in range(0, len(ids), CHUNK):
        chunk = ids[index:index + CHUNK]
        for rid, birth_year, gender, locality in db.session.execute(
                select(Resident.id, Resident.birth_year, Resident.gender, Resident.locality)
                .where(Resident.id.in_(chunk))):
            found[rid] = Attributes(birth_year, {"gender": [gender or UNKNOWN],
                                                 "municipality": [locality or UNKNOWN]})
        if not keys:
            continue
        for rid, category, value, collected_at in db.session.execute(
                select(RegisteredRecord.resident_id, RegisteredRecord.category,
                       RegisteredRecord.value, RegisteredRecord.collected_at)
                .where(RegisteredRecord.resident_id.in_(chunk),
                       RegisteredRecord.category.in_(keys),
                       RegisteredRecord.expires_at > now,
                       RegisteredRecord.disputed_at.is_(None))):
            if rid not in found or latest.get((rid, category), collected_at) > collected_at:
                continue
            latest[(rid, category)] = collected_at
            found[rid].values[category] = values(category, value)
    return found
