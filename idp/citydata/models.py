"""CitySeal: one closed time bucket of the city export, aggregated once and kept;
CityContribution: what one resident contributed to one sealed hour, frozen with it.

Why a table: the data behind a closed bucket keeps changing after the fact (a resident
opts out, a registered record expires or is disputed, a kiosk posts buffered touches
late). Recomputing a bucket at each export would let the city subtract two exports of
the same bucket and read the one resident who changed. The first export of a bucket
seals its counts (before suppression; counts only, never an identifier) and every
later export suppresses those same counts the same way (docs/city-export.md).

Why contributions: a day, a week or a month counts each resident once, so it cannot be
added up from the hours' counts, and computing it from the live data would let the
city subtract the hours exported earlier from the day exported later and read the
resident who changed in between. When an hour is sealed, each resident behind its
touches is frozen with it (a keyed pseudonym, counted or opted out, and their breakdown
values then); every coarser bucket is computed from these frozen rows only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base
from idp.db import created_at


class CitySeal(Base):
    __tablename__ = "city_seals"
    __table_args__ = (UniqueConstraint("granularity", "bucket_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # hour, day, week or month (idp.citydata.buckets).
    granularity: Mapped[str] = mapped_column(String(8))
    # The bucket's first instant (Japan time, stored in UTC).
    bucket_start: Mapped[dt.datetime]
    # {area: {"touches", "residents", "left_out", "sensors": {direction: n},
    #         "dimensions": {dimension: {value: n}}}} — counts of people and events.
    counts: Mapped[dict[str, Any]]
    # Version of the method that computed the counts (a change of method seals anew
    # only buckets not sealed yet).
    method: Mapped[int] = mapped_column(default=1)
    sealed_at: Mapped[created_at]


class CityContribution(Base):
    __tablename__ = "city_contributions"
    # Also the index the coarser buckets read by (hour_start first).
    __table_args__ = (UniqueConstraint("hour_start", "area", "person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The sealed hour (its first instant, stored in UTC) and the area of the touches.
    hour_start: Mapped[dt.datetime]
    area: Mapped[str] = mapped_column(String(200))
    # HMAC of the resident under the server secret (``export.pseudonym``): the same
    # resident in two hours is one person of the day, and nothing leads back to them.
    person: Mapped[str] = mapped_column(String(32))
    # {dimension: [values]} as they stood when the hour was sealed; None when the
    # resident had opted out of statistics then (counted in ``left_out`` only).
    values: Mapped[dict[str, Any] | None]
