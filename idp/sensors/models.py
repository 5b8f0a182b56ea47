"""Sensor (a counting device, where it stands, what it covers) and SensorCount (one
interval's count in one direction)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from idp.clients.models import Client
from idp.db import Base
from idp.db import created_at
from idp.db import utcnow


class Sensor(Base):
    """A people-counting device: one confidential client_credentials client, and the
    place it watches. Everything here is public (``/transparency``)."""

    __tablename__ = "sensors"

    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), primary_key=True)
    location: Mapped[str] = mapped_column(String(200))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    # What it watches, in words ("the north entrance of the square, both lanes").
    area: Mapped[str] = mapped_column(String(200), default="")
    retention_days: Mapped[int] = mapped_column(default=365)
    contact: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[created_at]
    last_seen_at: Mapped[dt.datetime | None]

    client: Mapped[Client] = relationship(lazy="joined")


class SensorCount(Base):
    """Passers-by counted by one sensor in one interval and direction. A resend of the
    same (sensor, interval start, direction) replaces the count."""

    __tablename__ = "sensor_counts"
    __table_args__ = (UniqueConstraint("client_id", "interval_start", "direction"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("sensors.client_id"))
    interval_start: Mapped[dt.datetime]
    interval_seconds: Mapped[int]
    direction: Mapped[str] = mapped_column(String(8))
    count: Mapped[int]
    received_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
