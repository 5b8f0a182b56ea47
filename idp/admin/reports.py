"""Usage reports for the data-use contract (利用状況報告), per company and period.

For the days ``first`` to ``last`` (Japan time, inclusive):

- residents: how many had a consent in force for one of the company's
  clients at some time in the period, how many consents were given and
  withdrawn, and how many requests were declined;
- claims: how many times each claim was released, by channel (ID token,
  UserInfo); releases of ``verified_claims`` are counted per claim too;
- tokens issued (code, device and client credentials grants, and refreshes);
- touch events logged by the company's kiosks, with and without a resident;
- registered data (``idp.exchange.usage``): contributions and releases per
  category, releases per data link (received, and of the company's own records),
  and the usage reports the company submitted for the period.

Everything comes from the audit trail and the touch events; no resident
identifier leaves the report. Producing a report is itself audited
(``report:usage``) by the caller.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from collections import defaultdict
from typing import Any

from sqlalchemy import func
from sqlalchemy import select

from idp.admin import stats
from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.clients import service as clients
from idp.clients.models import Client
from idp.db import utcnow
from idp.exchange import usage as exchange_usage
from idp.extensions import db
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent
from idp.spreadsheet import SafeWriter

MAX_DAYS = 366


class ReportError(ValueError):
    pass


def _period(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    if last < first:
        raise ReportError("the period ends before it starts")
    if (last - first).days >= MAX_DAYS:
        raise ReportError(f"a report covers at most {MAX_DAYS} days")
    return stats.day_start(first), stats.day_start(last + dt.timedelta(days=1))


def usage(company_id: str, first: dt.date, last: dt.date) -> dict[str, Any]:
    company = clients.get_company(company_id)
    start, end = _period(first, last)
    company_clients = list(db.session.scalars(
        select(Client).where(Client.company_id == company.id).order_by(Client.created_at)))
    ids = [c.id for c in company_clients]
    kiosks = {k.client_id: k for k in db.session.scalars(
        select(Kiosk).where(Kiosk.client_id.in_(ids)))} if ids else {}

    in_period = (AuditEvent.company_id == company.id, AuditEvent.at >= start,
                 AuditEvent.at < end)
    tag_counts = defaultdict(Counter)  # tag -> Counter(client_id)
    for tag, client_id, n in db.session.execute(
            select(AuditEvent.tag, AuditEvent.client_id, func.count())
            .where(*in_period).group_by(AuditEvent.tag, AuditEvent.client_id)):
        tag_counts[tag][client_id] += n
    withdrawals = Counter()
    for client_id, data in db.session.execute(
            select(AuditEvent.client_id, AuditEvent.data)
            .where(*in_period, AuditEvent.tag == str(AuditTag.CONSENT_CHANGE))):
        if (data or {}).get("withdrawn"):
            withdrawals[client_id] += 1

    claims = defaultdict(Counter)  # claim -> Counter(channel)
    per_client_releases = Counter()
    for client_id, data in db.session.execute(
            select(AuditEvent.client_id, AuditEvent.data)
            .where(*in_period, AuditEvent.tag == str(AuditTag.CLAIMS_RELEASE))):
        data = data or {}
        per_client_releases[client_id] += 1
        for claim in data.get("claims") or []:
            claims[claim][data.get("channel") or "unknown"] += 1

    intervals = stats.consent_intervals(client_ids=ids, until=end) if ids else {}
    consenting = defaultdict(set)
    for (resident_id, client_id), spans in intervals.items():
        if any(s.start < end and s.end > start for s in spans):
            consenting[client_id].add(resident_id)
    residents_all = set().union(*consenting.values()) if consenting else set()

    touches = defaultdict(lambda: {"total": 0, "with_resident": 0})
    if ids:
        for client_id, total, with_resident in db.session.execute(
                select(TouchEvent.client_id, func.count(), func.count(TouchEvent.resident_id))
                .where(TouchEvent.client_id.in_(ids), TouchEvent.occurred_at >= start,
                       TouchEvent.occurred_at < end)
                .group_by(TouchEvent.client_id)):
            touches[client_id] = {"total": total, "with_resident": with_resident}

    def count(tag: AuditTag, client_id: str | None = None) -> int:
        counter = tag_counts.get(str(tag), Counter())
        return counter[client_id] if client_id else sum(counter.values())

    def consents_given(client_id: str | None = None) -> int:
        changes = count(AuditTag.CONSENT_CHANGE, client_id)
        withdrawn = withdrawals[client_id] if client_id else sum(withdrawals.values())
        return count(AuditTag.CONSENT_GRANT, client_id) + changes - withdrawn

    def tokens(client_id: str | None = None) -> int:
        return count(AuditTag.TOKEN_ISSUE, client_id) + count(AuditTag.TOKEN_REFRESH, client_id)

    contract = company.contract
    return {
        "company": {"id": company.id, "name": company.name, "status": company.status},
        "contract": {"reference": contract.reference, "version": contract.version,
                     "signed_on": contract.signed_on.isoformat()} if contract else None,
        "period": {"from": first.isoformat(), "to": last.isoformat(),
                   "timezone": "Asia/Tokyo"},
        "generated_at": utcnow().isoformat(),
        "residents": {
            "with_consent": len(residents_all),
            "consents_given": consents_given(),
            "consents_withdrawn": sum(withdrawals.values()),
            "requests_declined": count(AuditTag.CONSENT_DENY),
        },
        "claims": [{"claim": name, "releases": sum(by.values()),
                    "id_token": by.get("id_token", 0), "userinfo": by.get("userinfo", 0)}
                   for name, by in sorted(claims.items())],
        "releases": sum(per_client_releases.values()),
        "tokens_issued": tokens(),
        "touch_events": {
            "total": sum(t["total"] for t in touches.values()),
            "with_resident": sum(t["with_resident"] for t in touches.values()),
        },
        "registered_data": {
            **exchange_usage.company_usage(company.id, start, end),
            "submitted_reports": exchange_usage.in_period(
                exchange_usage.uploaded(company.id), first, last),
        },
        "clients": [{
            "client_id": c.id,
            "name": c.name,
            "kind": "kiosk" if c.id in kiosks else "app",
            "location": kiosks[c.id].location if c.id in kiosks else None,
            "status": "revoked" if c.revoked_at else ("active" if c.is_active else "suspended"),
            "residents_with_consent": len(consenting.get(c.id, ())),
            "consents_given": consents_given(c.id),
            "consents_withdrawn": withdrawals[c.id],
            "releases": per_client_releases[c.id],
            "tokens_issued": tokens(c.id),
            "touch_events": touches[c.id]["total"] if c.id in touches else 0,
            "touch_events_with_resident":
                touches[c.id]["with_resident"] if c.id in touches else 0,
        } for c in company_clients],
    }


CSV_HEADER = ["section", "client_id", "name", "metric", "value"]
def to_csv(report: dict[str, Any]) -> str:
    """One fact per row: section, client (or empty for the company), metric, value."""
    out = io.StringIO()
    writer = SafeWriter(out)
    writer.writerow(CSV_HEADER)
    company = report["company"]
    writer.writerow(["company", "", company["name"], "id", company["id"]])
    writer.writerow(["company", "", company["name"], "status", company["status"]])
    if report["contract"]:
        for key, value in report["contract"].items():
            writer.writerow(["contract", "", company["name"], key, value])
    writer.writerow(["period", "", "", "from", report["period"]["from"]])
    writer.writerow(["period", "", "", "to", report["period"]["to"]])
    writer.writerow(["period", "", "", "timezone", report["period"]["timezone"]])
    for key, value in report["residents"].items():
        writer.writerow(["residents", "", "", key, value])
    writer.writerow(["releases", "", "", "total", report["releases"]])
    for row in report["claims"]:
        for key in ("releases", "id_token", "userinfo"):
            writer.writerow(["claims", "", row["claim"], key, row[key]])
    writer.writerow(["tokens", "", "", "issued", report["tokens_issued"]])
    for key, value in report["touch_events"].items():
        writer.writerow(["touch_events", "", "", key, value])
    data = report["registered_data"]
    for key, value in data["contributions"].items():
        writer.writerow(["contributions", "", "", key, value])
    writer.writerow(["registered_releases", "", "", "total", data["releases"]])
    for row in data["categories"]:
        for key in ("contributed", "withdrawn", "released"):
            writer.writerow(["categories", "", row["category"], key, row[key]])
    for section in ("links", "released_from"):
        for row in data[section]:
            name = f"{row['source_company'] or ''} → {row['recipient_client_id'] or ''}"
            writer.writerow([section, row["recipient_client_id"] or "", name,
                             f"link {row['link_id']} {row['category'] or ''}".strip(),
                             row["releases"]])
    for row in data["submitted_reports"]:
        writer.writerow(["submitted_reports", "", row["filename"], "sha256", row["sha256"]])
    for client in report["clients"]:
        for key, value in client.items():
            if key not in ("client_id", "name"):
                writer.writerow(["client", client["client_id"], client["name"], key,
                                 "" if value is None else value])
    return out.getvalue()
