"""Kiosk (where a screen stands) and TouchEvent (what was touched, by whom if consented)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from idp.clients.models import Client
from idp.db import Base
from idp.db import created_at


class Kiosk(Base):
    """A signage screen: one confidential client, and the place it stands."""

    __tablename__ = "kiosks"

    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), primary_key=True)
    location: Mapped[str] = mapped_column(String(200))
    # Where it stands on the transparency page's map (WGS 84), and whom to ask.
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    contact: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[created_at]
    last_seen_at: Mapped[dt.datetime | None]

    client: Mapped[Client] = relationship(lazy="joined")


class TouchEvent(Base):
    """One touch on a kiosk. ``resident_id`` only under a device-flow token with
    the ``touch_events`` scope the resident consented to; else anonymous."""

    __tablename__ = "touch_events"
    # A retried batch never double-counts: (client, event_id) is unique.
    __table_args__ = (
        UniqueConstraint("client_id", "event_id"),
        Index("ix_touch_events_client_id_occurred_at", "client_id", "occurred_at"),
        # A resident's touches (their export, their erasure's SET NULL, a kiosk session's
        # last touch): most touches are passers-by's, without a resident, and need no entry
        # (docs/performance.md). ``resident_id = :id`` implies the predicate.
        Index("ix_touch_events_resident_id_present", "resident_id",
              postgresql_where=text("resident_id IS NOT NULL"),
              sqlite_where=text("resident_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The kiosk's client, copied from its verified token, without a foreign key: an
    # append-only log as audit_events is, and clients are never deleted. A foreign key
    # checked every touch, each locking the client's one row (migration d2f8a6c4e1b7).
    client_id: Mapped[str] = mapped_column(String(40))
    resident_id: Mapped[str | None] = mapped_column(
        ForeignKey("residents.id", ondelete="SET NULL"))
    occurred_at: Mapped[dt.datetime]
    target: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[created_at]
