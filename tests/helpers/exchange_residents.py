"""Registered data for the residents' tests, written straight to the tables (the
contribution API is tested on its own): a company under a data-use contract, one of
its services, and records about a resident with their provenance."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

from idp.audit.service import record as audit
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.exchange import categories
from idp.exchange import contracts
from idp.exchange.models import RegisteredRecord
from idp.extensions import db
from tests import factories

_ids = itertools.count(1)

# In force since before the fixed days some tests freeze the clock at (2026-12-03), and
# for a year from the real today: whatever the real day or hour (contract days are
# Japan's, idp.exchange.contracts.today).
IN_FORCE_SINCE = dt.date(2026, 1, 1)


@dataclass
class Contributor:
    company_id: str
    client_id: str
    contract_id: str


def contributor(name: str = "A社", keys=("language", "occupation", "household"),
                **client_kwargs) -> Contributor:
    """A company with a data-use contract in force for ``keys`` and a backend client."""
    categories.ensure_defaults()
    company_id = factories.company(name)
    contract = contracts.create(company_id, list(keys), "会員サービスの改善",
                                valid_from=IN_FORCE_SINCE,
                                valid_until=utcnow().date() + dt.timedelta(days=365))
    rp = factories.rp(company_id, grant_types=["client_credentials"], redirect_uris=None,
                      scopes=["touch_events"], **client_kwargs)
    db.session.commit()
    return Contributor(company_id, rp.client_id, contract.id)


def contribute(source: Contributor, resident_id: str, category: str, value: Any, *,
               record_id: str | None = None, collected_at: dt.datetime | None = None,
               audited: bool = True) -> RegisteredRecord:
    """One record as the contribution API stores it (and audits it)."""
    now = utcnow()
    row = RegisteredRecord(
        resident_id=resident_id, category=category, company_id=source.company_id,
        client_id=source.client_id, contract_id=source.contract_id,
        record_id=record_id or f"r-{next(_ids)}",
        value=value, collected_at=collected_at or now - dt.timedelta(days=1),
        received_at=now, expires_at=now + dt.timedelta(days=365))
    db.session.add(row)
    db.session.flush()
    if audited:
        audit(AuditTag.RECORD_CONTRIBUTE, actor="client", resident_id=resident_id,
              client_id=source.client_id, company_id=source.company_id,
              category=category, record_id=row.record_id)
    db.session.commit()
    return row
