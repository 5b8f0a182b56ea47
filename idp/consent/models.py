"""Consent: one row per (resident, client), updated as the resident decides again;
ConsentReceipt: the resident's copy of each decision, kept as issued."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from idp.clients.models import Client
from idp.db import Base
from idp.db import created_at


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
        # The same rule as idp.consent.service._in_force (its SQL form, which token
        # lookups use); tests/flows/test_consent_in_force.py checks they agree.
        return (
            self.withdrawn_at is None
            and self.expires_at > now
            and self.terms_version == terms_version
        )


class ConsentReceipt(Base):
    """A Kantara Consent Receipt v1.1 for one consent given or withdrawn.

    ``document`` is the receipt exactly as issued (``idp.consent.receipts``);
    it is never re-rendered, so a download later shows what was true then.
    """

    __tablename__ = "consent_receipts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # consentReceiptID (UUID)
    resident_id: Mapped[str] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))  # "given", "withdrawn" or "narrowed"
    issued_at: Mapped[created_at]
    document: Mapped[dict[str, Any]]

    client: Mapped[Client] = relationship(lazy="joined")
