"""The resident's control over registered data (issue 14, item 4): what is held about
them, by source company, and how it was collected; delete an item, dispute it, stop
and resume collection from a company.

- ``held``       every record about the resident grouped by the company that sent it
                 (provenance: the contributing service, ``collected_at``,
                 ``received_at``, the contract's purpose), with each company's
                 collection stop, plus the companies that could contribute (a
                 contract in force) so collection can be stopped before it starts;
- ``delete``     one record goes for good (the contributor is not told: it keeps
                 its own copy, and a new contribution of the same record id is a
                 new record);
- ``dispute``    the record stays, flagged (``disputed_at``) with the resident's
                 note (up to 500 characters), and every client of the contributing
                 company with an event receiver is sent a
                 ``registered-data-disputed`` security event naming the category,
                 its own record id and the note. **A disputed value is not
                 released** (``releasable``): the resident's word stands until the
                 contributor corrects it (DELETE and a new contribution, which
                 starts undisputed);
- ``stop``       the company's contributions about the resident are refused from
                 now on (``idp.exchange.records`` checks the ``CollectionStop``;
                 ``collection_stopped`` asks the same), and the data links do not
                 release what it sent while stopped; if the resident chooses, what
                 it sent is deleted too;
- ``resume``     the stop goes; contributions are accepted again (nothing deleted
                 comes back).

Every record is looked up by the resident's id together with its own, so another
resident's record id is "not found", never "not yours". Every change is audited
(``RESIDENT_DATA_DELETE``, ``RESIDENT_DATA_DISPUTE``, ``COLLECTION_STOP``,
``COLLECTION_RESUME``) with the company, never the value.

The privacy parts (``export_resident``, ``forget_resident``) cover every exchange
table that names the resident: records, data links and collection stops.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from idp.access import security_events
from idp.audit.service import record as audit
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.clients.models import Company
from idp.db import utcnow
from idp.exchange import contracts
from idp.exchange.models import Category
from idp.exchange.models import CollectionStop
from idp.exchange.models import DataContract
from idp.exchange.models import DataLink
from idp.exchange.models import RegisteredRecord
from idp.extensions import db

MAX_NOTE = 500
# The ``reason`` of the security event (and of its audit record).
DISPUTE_REASON = "registered_data_disputed"


class ResidentDataError(LookupError):
    """A change the resident asked for cannot be made; ``reason`` says why:
    ``not_found`` (no such record or company for this resident), ``not_stopped``
    (resume without a stop), ``bad_note`` (empty, too long or unprintable)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Item:
    """One record as the resident sees it."""

    record: RegisteredRecord
    category: Category | None
    service: str | None  # the contributing service's name (None if it is gone)
    purpose: str | None  # the purpose of the contract it came under

    @property
    def disputed(self) -> bool:
        return self.record.disputed_at is not None


@dataclass
class Source:
    """A company that sent (or may send) registered data about the resident."""

    company: Company
    items: list[Item] = field(default_factory=list)
    stop: CollectionStop | None = None

    @property
    def stopped(self) -> bool:
        return self.stop is not None


# ---- reading ---------------------------------------------------------------------------

def records_of(resident_id: str) -> list[RegisteredRecord]:
    return list(db.session.scalars(
        select(RegisteredRecord).where(RegisteredRecord.resident_id == resident_id)
        .order_by(RegisteredRecord.company_id, RegisteredRecord.category,
                  RegisteredRecord.received_at.desc(), RegisteredRecord.id.desc())))


def stops_of(resident_id: str) -> list[CollectionStop]:
    return list(db.session.scalars(
        select(CollectionStop).where(CollectionStop.resident_id == resident_id)
        .order_by(CollectionStop.stopped_at, CollectionStop.id)))


def _possible_contributors() -> set[str]:
    """Companies with a data-use contract in force today (they may contribute)."""
    today = contracts.today()
    return {c.company_id for c in db.session.scalars(
        select(DataContract).where(DataContract.ended_at.is_(None),
                                   DataContract.valid_from <= today,
                                   DataContract.valid_until >= today))}


def held(resident_id: str) -> list[Source]:
    """Every company that holds records about the resident, has collection stopped,
    or could contribute (an active company with a contract in force), each with its
    records (newest first within a category) and stop. Companies holding records
    come first, by name."""
    records = records_of(resident_id)
    stops = {s.company_id: s for s in stops_of(resident_id)}
    company_ids = {r.company_id for r in records} | set(stops) | _possible_contributors()
    if not company_ids:
        return []
    companies = {c.id: c for c in db.session.scalars(
        select(Company).where(Company.id.in_(company_ids)))}
    client_ids = {r.client_id for r in records}
    services = dict(db.session.execute(
        select(Client.id, Client.name).where(Client.id.in_(client_ids))).all()
    ) if client_ids else {}
    contract_ids = {r.contract_id for r in records}
    purposes = dict(db.session.execute(
        select(DataContract.id, DataContract.purpose)
        .where(DataContract.id.in_(contract_ids))).all()) if contract_ids else {}
    kinds = {c.key: c for c in db.session.scalars(select(Category))}
    sources: dict[str, Source] = {}
    for company_id in company_ids:
        company = companies.get(company_id)
        holds = any(r.company_id == company_id for r in records)
        if company is None or not (holds or company_id in stops or company.is_active):
            continue
        sources[company_id] = Source(company, stop=stops.get(company_id))
    for row in records:
        if row.company_id in sources:
            sources[row.company_id].items.append(Item(
                row, kinds.get(row.category), services.get(row.client_id),
                purposes.get(row.contract_id)))
    return sorted(sources.values(),
                  key=lambda s: (not s.items, s.company.name, s.company.id))


def find(resident_id: str, item_id: Any) -> RegisteredRecord | None:
    """The resident's own record of this id, or None (also for anyone else's)."""
    if isinstance(item_id, str):
        item_id = int(item_id) if item_id.isdigit() and len(item_id) < 19 else None
    if not isinstance(item_id, int) or isinstance(item_id, bool):
        return None
    return db.session.scalar(select(RegisteredRecord).where(
        RegisteredRecord.id == item_id, RegisteredRecord.resident_id == resident_id))


def collection_stopped(resident_id: str, company_id: str) -> bool:
    """Whether the resident stopped collection from the company (contributions refused)."""
    return db.session.scalar(select(CollectionStop.id).where(
        CollectionStop.resident_id == resident_id,
        CollectionStop.company_id == company_id)) is not None


def company_name(company_id: str) -> str | None:
    company = db.session.get(Company, company_id) if isinstance(company_id, str) else None
    return company.name if company else None


def releasable(record: RegisteredRecord) -> bool:
    """Whether a record's value may be released to a recipient: not while disputed."""
    return record.disputed_at is None


# ---- changes ---------------------------------------------------------------------------

def _require(resident_id: str, item_id: Any) -> RegisteredRecord:
    row = find(resident_id, item_id)
    if row is None:
        raise ResidentDataError("not_found")
    return row


def delete(resident_id: str, item_id: Any) -> RegisteredRecord:
    """Delete one of the resident's records for good; returns it (detached)."""
    row = _require(resident_id, item_id)
    audit(AuditTag.RESIDENT_DATA_DELETE, actor="resident", resident_id=resident_id,
          company_id=row.company_id, client_id=row.client_id, category=row.category,
          count=1)
    db.session.delete(row)
    db.session.flush()
    return row


def clean_note(note: Any) -> str:
    """The dispute note as kept: NFC, trimmed, 1 to ``MAX_NOTE`` characters, printable
    (line breaks allowed); ``ResidentDataError("bad_note")`` otherwise."""
    if not isinstance(note, str):
        raise ResidentDataError("bad_note")
    text = unicodedata.normalize("NFC", note.replace("\r\n", "\n")).strip()
    if not text or len(text) > MAX_NOTE:
        raise ResidentDataError("bad_note")
    if not all(c.isprintable() or c == "\n" for c in text):
        raise ResidentDataError("bad_note")
    return text


def dispute(resident_id: str, item_id: Any, note: Any) -> tuple[RegisteredRecord, int]:
    """Flag one of the resident's records as wrong, with their note; the contributing
    company is told. Disputing again replaces the note (and tells it again).
    Returns the record and how many security events were queued."""
    text = clean_note(note)
    row = _require(resident_id, item_id)
    row.disputed_at = utcnow()
    row.dispute_note = text
    db.session.flush()
    told = _tell_contributor(row)
    audit(AuditTag.RESIDENT_DATA_DISPUTE, actor="resident", resident_id=resident_id,
          company_id=row.company_id, client_id=row.client_id, category=row.category,
          record_id=row.record_id, note_length=len(text), security_events=told)
    return row, told


def _tell_contributor(row: RegisteredRecord) -> int:
    """The ``registered-data-disputed`` security event to every active client of the
    contributing company with an event receiver (docs/security-events.md): the
    category, the contributor's own record id, when, and the resident's note. The
    subject is the company's pairwise ``sub`` (the one it contributed under).
    Returns how many were queued."""
    detail = {"category": row.category, "record_id": row.record_id,
              "disputed_at": int(row.disputed_at.timestamp()), "note": row.dispute_note}
    client_ids = db.session.scalars(
        select(Client.id).where(Client.company_id == row.company_id,
                                Client.event_receiver_uri.is_not(None),
                                Client.revoked_at.is_(None))
        .order_by(Client.id))
    queued = 0
    for client_id in client_ids:
        try:
            queued += security_events.queue(
                client_id, row.resident_id, security_events.REGISTERED_DATA_DISPUTED, detail,
                reason=DISPUTE_REASON)
        except ValueError:
            # The note happens to hold the resident's internal id, which a company must
            # never see: the event goes without the note (the record keeps it).
            queued += security_events.queue(
                client_id, row.resident_id, security_events.REGISTERED_DATA_DISPUTED,
                {k: v for k, v in detail.items() if k != "note"}, reason=DISPUTE_REASON)
    return queued


def stop(resident_id: str, company_id: str, *, delete_sent: bool = False
         ) -> tuple[CollectionStop, int]:
    """Stop collection from the company (its contributions about the resident are
    refused); with ``delete_sent`` its records about the resident go too. Stopping
    again keeps the first stop (and may still delete). Returns the stop and how many
    records were deleted."""
    company = db.session.get(Company, company_id) if isinstance(company_id, str) else None
    if company is None or not _may_name(resident_id, company):
        raise ResidentDataError("not_found")
    row = db.session.scalar(select(CollectionStop).where(
        CollectionStop.resident_id == resident_id, CollectionStop.company_id == company_id))
    new = row is None
    if new:
        row = CollectionStop(resident_id=resident_id, company_id=company_id)
        db.session.add(row)
    deleted = 0
    if delete_sent:
        deleted = db.session.execute(
            sql_delete(RegisteredRecord).where(RegisteredRecord.resident_id == resident_id,
                                               RegisteredRecord.company_id == company_id)
            .execution_options(synchronize_session="fetch")).rowcount
    db.session.flush()
    if new or deleted:
        audit(AuditTag.COLLECTION_STOP, actor="resident", resident_id=resident_id,
              company_id=company_id, records_deleted=deleted, already_stopped=not new)
    return row, deleted


def _may_name(resident_id: str, company: Company) -> bool:
    """A company the resident can see on the page: it holds records about them, is
    stopped already, or may contribute (active, with a contract in force)."""
    if db.session.scalar(select(RegisteredRecord.id).where(
            RegisteredRecord.resident_id == resident_id,
            RegisteredRecord.company_id == company.id).limit(1)) is not None:
        return True
    if collection_stopped(resident_id, company.id):
        return True
    return company.is_active and company.id in _possible_contributors()


def resume(resident_id: str, company_id: str) -> None:
    """Accept the company's contributions about the resident again."""
    row = db.session.scalar(select(CollectionStop).where(
        CollectionStop.resident_id == resident_id,
        CollectionStop.company_id == company_id)) if isinstance(company_id, str) else None
    if row is None:
        raise ResidentDataError("not_stopped")
    stopped_at = row.stopped_at
    db.session.delete(row)
    db.session.flush()
    audit(AuditTag.COLLECTION_RESUME, actor="resident", resident_id=resident_id,
          company_id=company_id, stopped_for_seconds=int((utcnow() - stopped_at)
                                                          .total_seconds()))


# ---- the exchange's part of privacy operations (idp.privacy) ---------------------------

def export_resident(resident_id: str, names) -> dict:
    """The resident's part of a data export: every record with its provenance, every
    data link, every collection stop. ``names`` names clients and companies."""
    return {
        "registered_data": [
            {"id": r.id, "category": r.category, "value": r.value,
             "company_id": r.company_id, "company": names.company(r.company_id),
             "contributing_service": names.service(r.client_id),
             "contract_id": r.contract_id, "record_id": r.record_id,
             "collected_at": r.collected_at, "received_at": r.received_at,
             "expires_at": r.expires_at, "disputed_at": r.disputed_at,
             "dispute_note": r.dispute_note}
            for r in db.session.scalars(
                select(RegisteredRecord).where(RegisteredRecord.resident_id == resident_id)
                .order_by(RegisteredRecord.received_at, RegisteredRecord.id))],
        "data_links": [
            {"id": link.id, "category": link.category,
             "source_company_id": link.source_company_id,
             "source_company": names.company(link.source_company_id),
             "recipient": names.service(link.client_id), "purpose": link.purpose,
             "granted_at": link.granted_at, "expires_at": link.expires_at,
             "withdrawn_at": link.withdrawn_at, "end_reason": link.end_reason}
            for link in db.session.scalars(
                select(DataLink).where(DataLink.resident_id == resident_id)
                .order_by(DataLink.granted_at, DataLink.id))],
        "collection_stops": [
            {"company_id": s.company_id, "company": names.company(s.company_id),
             "stopped_at": s.stopped_at}
            for s in stops_of(resident_id)],
    }


def forget_resident(resident_id: str) -> dict[str, int]:
    """The exchange's part of an account deletion: every record, data link and
    collection stop of the resident is deleted (the rows would go with the resident
    row's cascade anyway; deleting them here counts them for the audit record)."""
    counts = {}
    for name, model in (("registered_records_deleted", RegisteredRecord),
                        ("data_links_deleted", DataLink),
                        ("collection_stops_deleted", CollectionStop)):
        counts[name] = db.session.execute(
            sql_delete(model).where(model.resident_id == resident_id)
            .execution_options(synchronize_session=False)).rowcount
    return counts

