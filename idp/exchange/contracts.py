"""Data-use contracts gate every contribution and every release.

A company contributes or receives a category only while a contract of its is in
force (not ended, today within its validity dates) and names that category. Every
refusal says why in words a member company's developer can act on; callers audit it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from idp import locales
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Company
from idp.db import utcnow
from idp.exchange import categories as category_service
from idp.exchange.models import DataContract
from idp.extensions import db


class ContractRefused(PermissionError):
    """No contract in force names this category for this company."""

    def __init__(self, company_id: str, category: str, reason: str):
        super().__init__(reason)
        self.company_id = company_id
        self.category = category
        self.reason = reason


class ContractError(ValueError):
    pass


def today() -> dt.date:
    """The day in Japan: a contract's dates are the consortium's days, so one ending on
    2026-12-03 is in force until midnight Japan time, not until 09:00 the next morning."""
    return locales.japan_today()


def for_company(company_id: str) -> list[DataContract]:
    """Every contract of a company, newest first (ended ones too: its history)."""
    return list(db.session.scalars(
        select(DataContract).where(DataContract.company_id == company_id)
        .order_by(DataContract.valid_from.desc(), DataContract.created_at.desc())))


def listing(company_id: str | None = None) -> list[DataContract]:
    """Every contract (or one company's), newest first."""
    query = select(DataContract).order_by(DataContract.created_at.desc(), DataContract.id)
    if company_id is not None:
        query = query.where(DataContract.company_id == company_id)
    return list(db.session.scalars(query))


def get(contract_id: str) -> DataContract | None:
    return db.session.get(DataContract, contract_id) if isinstance(contract_id, str) else None


def in_force(company_id: str, category: str, on: dt.date | None = None) -> DataContract | None:
    """The contract in force that names the category (the one valid longest), or None."""
    on = on or today()
    found = [c for c in for_company(company_id) if c.in_force(on) and category in c.categories]
    return max(found, key=lambda c: c.valid_until) if found else None


def require(company_id: str, category: str) -> DataContract:
    """The contract that allows this company to contribute or receive the category;
    ``ContractRefused`` saying why when none does."""
    contract = in_force(company_id, category)
    if contract is not None:
        return contract
    named = [c for c in for_company(company_id) if category in c.categories]
    if not named:
        reason = f"no data-use contract of this company names the category {category!r}"
    elif all(c.ended_at is not None for c in named):
        reason = f"the data-use contract for {category!r} was ended"
    elif all(c.valid_until < today() for c in named if c.ended_at is None):
        reason = f"the data-use contract for {category!r} has expired"
    else:
        reason = f"the data-use contract for {category!r} is not in force yet"
    raise ContractRefused(company_id, category, reason)


def create(company_id: str, categories: list[str], purpose: str, *, valid_until: dt.date,
           valid_from: dt.date | None = None, retention_days: int = 365, liability: str = "",
           audit_rights: str = "", breach_contact: str = "",
           actor: str | None = None) -> DataContract:
    company = db.session.get(Company, company_id) if isinstance(company_id, str) else None
    if company is None:
        raise ContractError("no such company")
    if not company.is_active:
        raise ContractError("the company is not active")
    keys = list(dict.fromkeys(categories))
    if not keys:
        raise ContractError("a contract names at least one category")
    unknown = [k for k in keys if category_service.get(k) is None]
    if unknown:
        raise ContractError(f"unknown categories: {', '.join(map(str, unknown))}")
    if not purpose or not purpose.strip():
        raise ContractError("the purpose of use is required")
    valid_from = valid_from or today()
    if valid_until < valid_from:
        raise ContractError("the contract must end on or after the day it starts")
    if not isinstance(retention_days, int) or not 1 <= retention_days <= 3650:
        raise ContractError("the retention period must be 1 to 3650 days")
    contract = DataContract(company_id=company_id, categories=keys, purpose=purpose.strip(),
                            retention_days=retention_days, liability=liability.strip(),
                            audit_rights=audit_rights.strip(),
                            breach_contact=breach_contact.strip()[:200],
                            valid_from=valid_from, valid_until=valid_until)
    db.session.add(contract)
    db.session.flush()
    record(AuditTag.DATA_CONTRACT_CREATE, actor=actor, company_id=company_id,
           contract_id=contract.id, categories=keys, valid_from=valid_from.isoformat(),
           valid_until=valid_until.isoformat())
    return contract


def end(contract_id: str, reason: str = "ended by the consortium",
        actor: str | None = None) -> DataContract:
    contract = db.session.get(DataContract, contract_id) if isinstance(contract_id, str) else None
    if contract is None:
        raise ContractError("no such contract")
    if contract.ended_at is not None:
        raise ContractError("the contract has ended already")
    contract.ended_at = utcnow()
    contract.end_reason = reason[:200]
    db.session.flush()
    record(AuditTag.DATA_CONTRACT_END, actor=actor, company_id=contract.company_id,
           contract_id=contract.id, categories=list(contract.categories),
           reason=contract.end_reason)
    return contract
