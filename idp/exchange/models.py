"""Registered data: categories, data-use contracts, contributed records, data links,
collection stops, companies' own usage reports and the monitoring's alerts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from idp import secrets
from idp.clients.models import Company
from idp.db import Base
from idp.db import created_at

SENSITIVITIES = ("normal", "sensitive")


class Category(Base):
    """A kind of registered data (the draft terms' item 5; the city's list in seed 000)."""

    __tablename__ = "data_categories"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    label_ja: Mapped[str] = mapped_column(String(100))
    label_en: Mapped[str] = mapped_column(String(100))
    # JSON Schema (Draft 2020-12) every contributed value must satisfy.
    value_schema: Mapped[dict[str, Any]]
    sensitivity: Mapped[str] = mapped_column(String(16), default="normal")
    # How long a contributed record is kept after it was received.
    retention_days: Mapped[int] = mapped_column(default=365)
    # Whether its values may feed the downtown database's de-identified statistics.
    statistics: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[created_at]
    retired_at: Mapped[dt.datetime | None]


class DataContract(Base):
    """A data-use contract (データ利用契約) in force between the consortium and a member
    company for some categories: it may contribute and receive those categories, for the
    purpose stated, within its validity dates (the member-contract list of seed 000:
    scope and purpose of use, retention, liability, usage reports and audits, breach
    notification)."""

    __tablename__ = "data_contracts"

    id: Mapped[str] = mapped_column(String(16), primary_key=True,
                                    default=lambda: secrets.random_id(12, "dc_"))
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    categories: Mapped[list[str]]
    purpose: Mapped[str] = mapped_column(Text)
    retention_days: Mapped[int] = mapped_column(default=365)
    liability: Mapped[str] = mapped_column(Text, default="")
    audit_rights: Mapped[str] = mapped_column(Text, default="")
    breach_contact: Mapped[str] = mapped_column(String(200), default="")
    valid_from: Mapped[dt.date]
    valid_until: Mapped[dt.date]
    created_at: Mapped[created_at]
    ended_at: Mapped[dt.datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(200))

    company: Mapped[Company] = relationship(lazy="joined")

    def in_force(self, today: dt.date) -> bool:
        return self.ended_at is None and self.valid_from <= today <= self.valid_until


class RegisteredRecord(Base):
    """One value a member company contributed about a resident, with its provenance."""

    __tablename__ = "registered_records"
    # Idempotency: a contributor's record id names one record.
    __table_args__ = (
        UniqueConstraint("company_id", "record_id"),
        Index("ix_registered_records_resident_id_category", "resident_id", "category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(ForeignKey("data_categories.key"))
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    # The contributing service (client) of the company.
    client_id: Mapped[str] = mapped_column(String(40))
    contract_id: Mapped[str] = mapped_column(ForeignKey("data_contracts.id"))
    record_id: Mapped[str] = mapped_column(String(100))
    value: Mapped[Any] = mapped_column(JSON)
    collected_at: Mapped[dt.datetime]
    received_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime]
    disputed_at: Mapped[dt.datetime | None]
    dispute_note: Mapped[str | None] = mapped_column(String(500))

    company: Mapped[Company] = relationship(lazy="joined")


class CollectionStop(Base):
    """The resident stopped collection from a company: its contributions are refused."""

    __tablename__ = "collection_stops"
    __table_args__ = (UniqueConstraint("resident_id", "company_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    stopped_at: Mapped[created_at]


class DataLink(Base):
    """Consent per data link (seed 004): one source company's records of one category,
    released to one recipient service, for the purpose of the recipient's contract,
    until the expiry the resident chose (None: until withdrawn)."""

    __tablename__ = "data_links"
    __table_args__ = (
        UniqueConstraint("resident_id", "client_id", "source_company_id", "category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"),
                                             index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    source_company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"))
    category: Mapped[str] = mapped_column(ForeignKey("data_categories.key"))
    purpose: Mapped[str] = mapped_column(Text, default="")
    granted_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    withdrawn_at: Mapped[dt.datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(40))

    source_company: Mapped[Company] = relationship(lazy="joined")

    def in_force(self, now: dt.datetime) -> bool:
        return self.withdrawn_at is None and (self.expires_at is None or self.expires_at > now)


class CompanyUsageReport(Base):
    """A usage report a member company submitted under its contract (000: 利用状況の報告),
    kept as received."""

    __tablename__ = "company_usage_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("data_contracts.id"))
    period_start: Mapped[dt.date]
    period_end: Mapped[dt.date]
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[created_at]
    # The admin who uploaded it (admins' ids are strings).
    admin_id: Mapped[str | None] = mapped_column(String(16))


class MonitoringAlert(Base):
    """A transaction the neutral operator's monitoring flagged (seed 004), with its evidence."""

    __tablename__ = "monitoring_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(40), index=True)
    company_id: Mapped[str | None] = mapped_column(String(16), index=True)
    client_id: Mapped[str | None] = mapped_column(String(40))
    window_start: Mapped[dt.datetime]
    window_end: Mapped[dt.datetime]
    evidence: Mapped[dict[str, Any]]
    detected_at: Mapped[created_at]
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(16))
