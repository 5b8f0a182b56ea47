"""Consent: one row per (resident, client), updated as the resident decides again."""

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


class Consent(Base):
    __tablename__ = "consents"
    # One row per pair: parallel submissions cannot create two (proven on PostgreSQL).
    __table_args__ = (UniqueConstraint("resident_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    # Optional items the resident unticked; not asked again until a new
    # terms version, expiry or prompt=consent.
    declined_scopes: Mapped[list[str]] = mapped_column(default=list)
    terms_version: Mapped[str] = mapped_column(String(40))
    granted_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    withdrawn_at: Mapped[dt.datetime | None]

    client: Mapped[Client] = relationship(lazy="joined")

    def in_force(self, now: dt.datetime, terms_version: str) -> bool:
        return (
            self.withdrawn_at is None
            and self.expires_at > now
            and self.terms_version == terms_version
        )
