"""Contributions: what a member company's backend sends about the residents it serves.

A batch (``POST /api/registered-data``) is checked whole before anything is stored,
and the first problem refuses all of it (the touch-event API's rule):

1. ``shape``       every record has ``sub``, ``category``, ``value``, ``record_id``,
                   ``collected_at`` (ISO 8601, not in the future) and nothing else;
2. ``scope``       the token holds ``contribute:<category>``;
3. ``contract``    a data-use contract of the company in force names the category
                   (``contracts.require``: the refusal says why; audited);
4. ``schema``      the value fits the category's JSON Schema;
5. ``subject``     the ``sub`` is the contributor's own pairwise identifier of a
                   resident (``PairwiseSubject`` of its company). An unknown ``sub``,
                   another company's, or one of a deleted resident get one and the same
                   answer, so a contributor cannot probe who exists;
6. ``collection``  the resident has not stopped collection from the company;
7. ``idempotency`` a ``record_id`` the company used before counts as a duplicate
                   when it says the same thing, and is refused when it does not.

Provenance is kept with each record (company, contributing service, contract,
collected_at, received_at); a record expires after the shorter of the category's
and the contract's retention (``purge_expired``, run by ``idp worker``). A
contributor deletes its own record by its ``record_id`` (``withdraw``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp import config
from idp import inputs
from idp.access.models import PairwiseSubject
from idp.audit.service import record as audit
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.exchange import categories
from idp.exchange import contracts
from idp.exchange.models import Category
from idp.exchange.models import CollectionStop
from idp.exchange.models import DataContract
from idp.exchange.models import RegisteredRecord
from idp.exchange.scopes import CONTRIBUTE
from idp.extensions import db

FIELDS = ("sub", "category", "value", "record_id", "collected_at")
MAX_RECORD_ID = 100
# A backend's clock may lag; a record cannot be collected in the future beyond this.
FUTURE_SKEW = dt.timedelta(minutes=5)
# One answer for every sub that does not name a resident this company served.
UNKNOWN_SUBJECT = "no resident with this sub for this company"
CONFLICT = ("this record_id names a different record already; send a new record_id, or "
            "DELETE the old record first")


class RecordError(ValueError):
    """A malformed batch (400); ``field`` names the offending member."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class Refused(PermissionError):
    """A well-formed batch the rules refuse (403, or 409 for a conflicting record id);
    ``error`` is the OAuth-style code, ``code`` the reason audited and counted."""

    def __init__(self, field: str, message: str, *, code: str, error: str = "access_denied",
                 status: int = 403, category: str | None = None):
        super().__init__(message)
        self.field = field
        self.category = category
        self.code = code
        self.error = error
        self.status = status


@dataclass(frozen=True)
class Item:
    index: int
    sub: str
    category: Category
    value: Any
    record_id: str
    collected_at: dt.datetime

    @property
    def where(self) -> str:
        return f"records[{self.index}]"


@dataclass(frozen=True)
class Accepted:
    item: Item
    resident_id: str
    contract: DataContract


def _instant(text: Any, where: str, now: dt.datetime) -> dt.datetime:
    try:
        when = inputs.iso_instant(text)
    except ValueError as error:
        raise RecordError(where, str(error)) from None
    if when > now + FUTURE_SKEW:
        raise RecordError(where, "must not be in the future")
    return when


def parse(payload: Any, now: dt.datetime | None = None) -> list[Item]:
    """The batch's records, each well-formed and of a category in use; RecordError else."""
    now = now or utcnow()
    limit = config.settings().registered_data_max_batch
    if not isinstance(payload, dict):
        raise RecordError("", "the body must be a JSON object")
    unknown = set(payload) - {"records"}
    if unknown:
        raise RecordError(sorted(unknown)[0], "unknown member")
    records = payload.get("records")
    if not isinstance(records, list):
        raise RecordError("records", "must be an array")
    if not records:
        raise RecordError("records", "must not be empty")
    if len(records) > limit:
        raise RecordError("records", f"at most {limit} records per request")
    items: list[Item] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(records):
        where = f"records[{i}]"
        if not isinstance(raw, dict):
            raise RecordError(where, "must be an object")
        extra = set(raw) - set(FIELDS)
        if extra:
            raise RecordError(f"{where}.{sorted(extra)[0]}", "unknown member")
        missing = [f for f in FIELDS if f not in raw]
        if missing:
            raise RecordError(f"{where}.{missing[0]}", "is required")
        sub = raw["sub"]
        if not isinstance(sub, str) or not 1 <= len(sub) <= 64:
            raise RecordError(f"{where}.sub", "must be the resident's sub (a string)")
        record_id = raw["record_id"]
        if not isinstance(record_id, str) or not 1 <= len(record_id) <= MAX_RECORD_ID \
                or not record_id.isprintable():
            raise RecordError(f"{where}.record_id",
                              f"must be 1 to {MAX_RECORD_ID} printable characters")
        if record_id in seen:
            raise RecordError(f"{where}.record_id",
                              f"repeats records[{seen[record_id]}].record_id")
        seen[record_id] = i
        category = categories.get(raw["category"])
        if category is None:
            raise RecordError(f"{where}.category", "unknown category")
        if len(json.dumps(raw["value"], ensure_ascii=False).encode()) > \
                categories.MAX_VALUE_BYTES:
            raise RecordError(f"{where}.value",
                              f"must be at most {categories.MAX_VALUE_BYTES} bytes as JSON")
        collected_at = _instant(raw["collected_at"], f"{where}.collected_at", now)
        items.append(Item(i, sub, category, raw["value"], record_id, collected_at))
    return items


def _resident_of(company_id: str, sub: str) -> str | None:
    return db.session.scalar(select(PairwiseSubject.resident_id).where(
        PairwiseSubject.sub == sub, PairwiseSubject.company_id == company_id))


def _stopped(company_id: str, resident_ids: set[str]) -> set[str]:
    if not resident_ids:
        return set()
    return set(db.session.scalars(select(CollectionStop.resident_id).where(
        CollectionStop.company_id == company_id,
        CollectionStop.resident_id.in_(resident_ids))))


def check(client, granted_scopes: list[str], items: list[Item]) -> list[Accepted]:
    """Apply the rules (scope, contract, schema, subject, collection) to every record;
    ``Refused`` (audited by ``contribute``) at the first that fails."""
    company_id = client.company_id
    granted = set(granted_scopes)
    contract_of: dict[str, DataContract] = {}
    for item in items:
        key = item.category.key
        if f"{CONTRIBUTE}{key}" not in granted:
            raise Refused(f"{item.where}.category",
                          f"the token does not hold the scope {CONTRIBUTE}{key}",
                          code="scope", error="insufficient_scope")
        if key not in contract_of:
            try:
                contract_of[key] = contracts.require(company_id, key)
            except contracts.ContractRefused as refused:
                raise Refused(f"{item.where}.category", refused.reason,
                              code="contract", category=key) from None
        errors = categories.validation_errors(item.category, item.value)
        if errors:
            raise RecordError(f"{item.where}.value", "; ".join(errors))
    residents = {item.sub: _resident_of(company_id, item.sub) for item in items}
    unknown = [item for item in items if residents[item.sub] is None]
    if unknown:
        raise Refused(f"{unknown[0].where}.sub", UNKNOWN_SUBJECT, code="unknown_subject")
    stopped = _stopped(company_id, set(residents.values()))
    for item in items:
        if residents[item.sub] in stopped:
            raise Refused(f"{item.where}.sub",
                          "the resident has stopped collection from this company",
                          code="collection_stopped")
    return [Accepted(item, residents[item.sub], contract_of[item.category.key])
            for item in items]


def _same(row: RegisteredRecord, accepted: Accepted) -> bool:
    item = accepted.item
    return (row.resident_id == accepted.resident_id and row.category == item.category.key
            and row.value == item.value and row.collected_at == item.collected_at)


def expiry(category: Category, contract: DataContract, received_at: dt.datetime) -> dt.datetime:
    """The shorter of the category's and the contract's retention."""
    return min(categories.retention_end(category, received_at),
               received_at + dt.timedelta(days=contract.retention_days))


def contribute(client, granted_scopes: list[str], payload: Any) -> tuple[int, int]:
    """Store a batch for ``client`` (its token's scopes ``granted_scopes``); all or nothing.
    Returns (stored, duplicates). RecordError for a malformed batch, Refused (audited
    ``RECORD_REFUSED``, and ``DATA_CONTRACT_REFUSED`` for a contract) otherwise."""
    now = utcnow()
    items = parse(payload, now)
    try:
        accepted = check(client, granted_scopes, items)
        existing = {row.record_id: row for row in db.session.scalars(
            select(RegisteredRecord).where(
                RegisteredRecord.company_id == client.company_id,
                RegisteredRecord.record_id.in_([a.item.record_id for a in accepted])))}
        for a in accepted:
            row = existing.get(a.item.record_id)
            if row is not None and not _same(row, a):
                raise Refused(f"{a.item.where}.record_id", CONFLICT,
                              code="conflict", error="conflict", status=409)
    except Refused as refused:
        _audit_refusal(client, items, refused)
        raise
    stored = []
    try:
        # The batch's own SAVEPOINT: a conflict found while inserting (a twin request
        # stored another record under one of these ids) takes back every row of it.
        with db.session.begin_nested():
            stored = [a for a in accepted
                      if a.item.record_id not in existing and _insert(client, a, now)]
    except Refused as refused:
        _audit_refusal(client, items, refused)
        raise
    for a in stored:
        # One event per record, carrying the resident: the resident's history shows it.
        audit(AuditTag.RECORD_CONTRIBUTE, actor="client", client_id=client.id,
              company_id=client.company_id, resident_id=a.resident_id,
              category=a.item.category.key, record_id=a.item.record_id,
              contract_id=a.contract.id, collected_at=a.item.collected_at.isoformat())
    db.session.flush()
    return len(stored), len(accepted) - len(stored)


def _insert(client, a: Accepted, now: dt.datetime) -> bool:
    """Insert one record in a SAVEPOINT; False when a concurrent request stored the same
    record first (the unique (company, record_id) constraint), ``Refused`` (409) when it
    stored a different one under this record_id."""
    item = a.item
    try:
        with db.session.begin_nested():
            db.session.add(RegisteredRecord(
                resident_id=a.resident_id, category=item.category.key,
                company_id=client.company_id, client_id=client.id, contract_id=a.contract.id,
                record_id=item.record_id, value=item.value, collected_at=item.collected_at,
                received_at=now, expires_at=expiry(item.category, a.contract, now)))
    except IntegrityError:
        row = db.session.scalar(select(RegisteredRecord).where(
            RegisteredRecord.company_id == client.company_id,
            RegisteredRecord.record_id == item.record_id))
        if row is not None and _same(row, a):
            return False
        raise Refused(f"{item.where}.record_id", CONFLICT, code="conflict", error="conflict",
                      status=409) from None
    return True


def _audit_refusal(client, items: list[Item], refused: Refused) -> None:
    data: dict[str, Any] = {"reason": refused.code, "field": refused.field,
                            "records": len(items),
                            "categories": sorted({i.category.key for i in items})}
    if refused.code == "unknown_subject":
        # How many distinct subs name nobody this company served (the monitoring's
        # "never served" rule counts them); never the subs themselves.
        data["unknown_subjects"] = sum(
            1 for sub in {i.sub for i in items} if _resident_of(client.company_id, sub) is None)
    if refused.code == "contract":
        audit(AuditTag.DATA_CONTRACT_REFUSED, actor="client", client_id=client.id,
              company_id=client.company_id, use="contribute", reason=str(refused),
              category=refused.category)
    audit(AuditTag.RECORD_REFUSED, actor="client", client_id=client.id,
          company_id=client.company_id, **data)


def withdraw(client, granted_scopes: list[str], record_id: str) -> RegisteredRecord:
    """Delete the company's record of this ``record_id`` (the contributor's correction).
    LookupError when the company has none; Refused without the category's scope."""
    row = db.session.scalar(select(RegisteredRecord).where(
        RegisteredRecord.company_id == client.company_id,
        RegisteredRecord.record_id == record_id)) if isinstance(record_id, str) else None
    if row is None:
        raise LookupError("no record with this record_id from this company")
    if f"{CONTRIBUTE}{row.category}" not in set(granted_scopes):
        raise Refused("record_id", f"the token does not hold the scope {CONTRIBUTE}{row.category}",
                      code="scope", error="insufficient_scope")
    audit(AuditTag.RECORD_WITHDRAW, actor="client", client_id=client.id,
          company_id=client.company_id, resident_id=row.resident_id, category=row.category,
          record_id=row.record_id)
    db.session.delete(row)
    db.session.flush()
    return row


def purge_expired(now: dt.datetime | None = None) -> int:
    """Delete every record past its retention; one audit event per company and category.
    Returns how many were deleted (``idp worker`` runs it)."""
    now = now or utcnow()
    rows = list(db.session.execute(
        select(RegisteredRecord.id, RegisteredRecord.company_id, RegisteredRecord.category)
        .where(RegisteredRecord.expires_at <= now)))
    if not rows:
        return 0
    counts = Counter((r.company_id, r.category) for r in rows)
    db.session.execute(delete(RegisteredRecord).where(
        RegisteredRecord.id.in_([r.id for r in rows])).execution_options(
        synchronize_session=False))
    for (company_id, category), count in sorted(counts.items()):
        audit(AuditTag.RECORD_EXPIRE, actor="worker", company_id=company_id,
              category=category, count=count)
    return len(rows)
