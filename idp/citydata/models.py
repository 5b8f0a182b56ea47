"""CitySeal: one closed time bucket of the city export, aggregated once and kept.

Why a table: the data behind a closed bucket keeps changing after the fact (a resident
opts out, a registered record expires or is disputed, a kiosk posts buffered touches
late). Recomputing a bucket at each export would let the city subtract two exports of
the same bucket and read the one resident who changed. The first export of a bucket
seals its counts (before suppression; counts only, never an identifier) and every
later export suppresses those same counts the same way (docs/city-export.md).
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
