"""The data exchange's part of a company's usage report (利用状況報告, issue 14 item 7),
and the usage reports companies submit themselves under their contracts.

From the audit trail, for a period ``[start, end)``:

- ``contributions``  what the company contributed, per category (RECORD_CONTRIBUTE),
                     with its withdrawals and refused batches;
- ``releases``       what the company received, per category and per data link
                     (RECORD_RELEASE events carry ``{categories: [...], links: [ids]}``);
- ``released_from``  its records released to other companies, per link (the links
                     whose source is the company), so a contributor sees where its
                     data went.

No resident identifier leaves the report. A company's own report is kept as
received (bytes, file name, type, SHA-256), listed and downloadable on the console,
audited ``USAGE_REPORT_UPLOAD``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import defer

from idp.audit.models import AuditEvent
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.exchange import contracts
from idp.exchange.models import CompanyUsageReport
from idp.exchange.models import DataLink
from idp.extensions import db

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_FILENAME = 200


class UploadError(ValueError):
    pass


def _events(tag: AuditTag, start: dt.datetime, end: dt.datetime, *conditions):
    return db.session.execute(select(AuditEvent.company_id, AuditEvent.client_id,
                                     AuditEvent.data).where(
        AuditEvent.tag == str(tag), AuditEvent.at >= start, AuditEvent.at < end, *conditions))


def _categories(data: dict[str, Any]) -> list[str]:
    keys = data.get("categories")
    if isinstance(keys, list):
        return [k for k in keys if isinstance(k, str)]
    key = data.get("category")
    return [key] if isinstance(key, str) else []


def _link_ids(data: dict[str, Any]) -> list[int]:
    links = data.get("links")
    return [i for i in links if isinstance(i, int)] if isinstance(links, list) else []


def _links(ids: set[int]) -> dict[int, DataLink]:
    if not ids:
        return {}
    return {link.id: link for link in db.session.scalars(
        select(DataLink).where(DataLink.id.in_(ids)))}


def _link_row(link_id: int, link: DataLink | None, releases: int) -> dict[str, Any]:
    if link is None:  # the link's row is gone (the resident deleted their ID)
        return {"link_id": link_id, "category": None, "source_company_id": None,
                "source_company": None, "recipient_client_id": None, "releases": releases}
    return {"link_id": link_id, "category": link.category,
            "source_company_id": link.source_company_id,
            "source_company": link.source_company.name,
            "recipient_client_id": link.client_id, "releases": releases}


def company_usage(company_id: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Contributions and releases of one company in ``[start, end)``."""
    client_ids = select(Client.id).where(Client.company_id == company_id)
    mine = or_(AuditEvent.company_id == company_id, AuditEvent.client_id.in_(client_ids))

    contributed: Counter = Counter()
    for _, _, data in _events(AuditTag.RECORD_CONTRIBUTE, start, end, mine):
        contributed.update(_categories(data or {}))
    withdrawn: Counter = Counter()
    for _, _, data in _events(AuditTag.RECORD_WITHDRAW, start, end, mine):
        withdrawn.update(_categories(data or {}))
    refused = sum(1 for _ in _events(AuditTag.RECORD_REFUSED, start, end, mine))

    received: Counter = Counter()
    received_links: Counter = Counter()
    releases = 0
    for _, _, data in _events(AuditTag.RECORD_RELEASE, start, end, mine):
        releases += 1
        received.update(_categories(data or {}))
        received_links.update(_link_ids(data or {}))

    # Releases of any company that used a link sourcing this company's records.
    all_links: Counter = Counter()
    for _, _, data in _events(AuditTag.RECORD_RELEASE, start, end):
        all_links.update(_link_ids(data or {}))
    links = _links(set(received_links) | set(all_links))
    from_mine = {i: n for i, n in all_links.items()
                 if i in links and links[i].source_company_id == company_id}

    categories = sorted(set(contributed) | set(withdrawn) | set(received))
    return {
        "contracts_in_force": [c.id for c in contracts.for_company(company_id)
                               if c.in_force(contracts.today())],
        "contributions": {"total": sum(contributed.values()), "refused_batches": refused,
                          "withdrawn": sum(withdrawn.values())},
        "releases": releases,
        "categories": [{"category": k, "contributed": contributed[k],
                        "withdrawn": withdrawn[k], "released": received[k]}
                       for k in categories],
        "links": [_link_row(i, links.get(i), n) for i, n in sorted(received_links.items())],
        "released_from": [_link_row(i, links[i], n) for i, n in sorted(from_mine.items())],
    }


# ---- companies' own usage reports ------------------------------------------------------

def upload(contract_id: str, filename: str, content_type: str, body: bytes, *,
           period_start: dt.date, period_end: dt.date,
           admin_id: str | None = None) -> CompanyUsageReport:
    """Keep a company's usage report under its contract, as received."""
    contract = contracts.get(contract_id)
    if contract is None:
        raise UploadError("no such contract")
    if not body:
        raise UploadError("the file is empty")
    if len(body) > MAX_UPLOAD_BYTES:
        raise UploadError(f"a report is at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    if period_end < period_start:
        raise UploadError("the period ends before it starts")
    name = "".join(c for c in (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
                   if c.isprintable()).strip()[:MAX_FILENAME] or "report"
    kind = (content_type or "application/octet-stream").split(";")[0].strip()[:100]
    report = CompanyUsageReport(
        company_id=contract.company_id, contract_id=contract.id, period_start=period_start,
        period_end=period_end, filename=name, content_type=kind or "application/octet-stream",
        body=body, sha256=hashlib.sha256(body).hexdigest(), admin_id=admin_id)
    db.session.add(report)
    db.session.flush()
    record(AuditTag.USAGE_REPORT_UPLOAD, admin_id=admin_id, company_id=contract.company_id,
           report_id=report.id, contract_id=contract.id, filename=name, sha256=report.sha256,
           bytes=len(body), period={"from": period_start.isoformat(),
                                    "to": period_end.isoformat()})
    return report


def uploaded(company_id: str | None = None) -> list[CompanyUsageReport]:
    """Uploaded reports (the body is loaded only when downloaded), newest first."""
    query = (select(CompanyUsageReport).options(defer(CompanyUsageReport.body))
             .order_by(CompanyUsageReport.received_at.desc(), CompanyUsageReport.id.desc()))
    if company_id is not None:
        query = query.where(CompanyUsageReport.company_id == company_id)
    return list(db.session.scalars(query))


def get_upload(report_id: int) -> CompanyUsageReport | None:
    return db.session.get(CompanyUsageReport, report_id) if isinstance(report_id, int) else None


def in_period(rows: list[CompanyUsageReport], first: dt.date,
              last: dt.date) -> list[dict[str, Any]]:
    """The uploaded reports whose period overlaps ``first``..``last``, described."""
    return [{"id": r.id, "contract_id": r.contract_id, "filename": r.filename,
             "sha256": r.sha256, "period_start": r.period_start.isoformat(),
             "period_end": r.period_end.isoformat(), "received_at": r.received_at.isoformat()}
            for r in rows if r.period_start <= last and r.period_end >= first]
