"""Published operation statistics (seed 003: operation logs are published only
de-identified): how the platform was used in one closed calendar month (Japan time).

Measures, each a total and a breakdown:

- ``sign_ins``: residents' successful sign-ins (audit ``resident:login:success``);
- ``consents_granted`` / ``consents_withdrawn`` per company (``consent:grant``;
  ``consent:change`` with ``withdrawn``);
- ``releases`` per category (``exchange:record:release``, one per category released);
- ``contributions`` per category (registered records received in the month);
- ``incidents`` per kind: monitoring alerts per rule, dead letters of the outbox per
  kind, refresh-token reuse and authorization-code replay detected.

A number is published only when it counts at least k events and, for measures about
residents, at least k distinct residents; otherwise it reads ``<k`` (e.g. ``<10``).
Complementary suppression hides more of a breakdown until what is hidden is itself at
least k (events and residents), so no hidden number is the difference between the total
and the published ones. No resident, address or client id appears; companies are named.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import select

from idp import config
from idp.audit.models import AuditEvent
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.citydata.buckets import TIMEZONE
from idp.clients.models import Company
from idp.db import utcnow
from idp.exchange.models import MonitoringAlert
from idp.exchange.models import RegisteredRecord
from idp.extensions import db
from idp.outbox.models import DEAD
from idp.outbox.models import OutboxMessage
from idp.spreadsheet import SafeWriter

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MEASURES = ("sign_ins", "consents_granted", "consents_withdrawn", "releases",
            "contributions", "incidents")
# Measures counting what residents did: a number also needs k distinct residents.
ABOUT_RESIDENTS = {"sign_ins", "consents_granted", "consents_withdrawn", "releases",
                   "contributions"}
CSV_HEADER = ["month", "measure", "breakdown", "count"]
TAGS = (AuditTag.LOGIN_SUCCESS, AuditTag.CONSENT_GRANT, AuditTag.CONSENT_CHANGE,
        AuditTag.RECORD_RELEASE, AuditTag.REFRESH_REUSE, AuditTag.CODE_REPLAY)


class OperationsError(ValueError):
    pass


@dataclass
class Tally:
    events: int = 0
    residents: set[str] = field(default_factory=set)
    # Events without a resident id (redacted after an account deletion): counted, and
    # each counted as a resident of its own is too generous, so they count as none.

    def add(self, resident_id: str | None) -> None:
        self.events += 1
        if resident_id:
            self.residents.add(resident_id)


def month_bounds(month: str, today: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The instants bounding a closed month given as YYYY-MM."""
    match = MONTH.match(month or "")
    if not match:
        raise OperationsError("--month must look like 2026-11")
    first = dt.date(int(match[1]), int(match[2]), 1)
    following = (first.replace(year=first.year + 1, month=1) if first.month == 12
                 else first.replace(month=first.month + 1))
    if following > today:
        raise OperationsError("only closed months are published: the month must have ended")
    return (dt.datetime.combine(first, dt.time(), TIMEZONE),
            dt.datetime.combine(following, dt.time(), TIMEZONE))


def _tallies(begin: dt.datetime, end: dt.datetime) -> dict[str, dict[str, Tally]]:
    tallies: dict[str, dict[str, Tally]] = {m: defaultdict(Tally) for m in MEASURES}
    names = dict(db.session.execute(select(Company.id, Company.name)).all())
    events = db.session.execute(
        select(AuditEvent.tag, AuditEvent.resident_id, AuditEvent.company_id, AuditEvent.data)
        .where(AuditEvent.tag.in_([str(t) for t in TAGS]), AuditEvent.at >= begin,
               AuditEvent.at < end))
    for tag, resident_id, company_id, data in events:
        company = names.get(company_id, "unknown")
        data = data or {}
        if tag == AuditTag.LOGIN_SUCCESS:
            tallies["sign_ins"]["all"].add(resident_id)
        elif tag == AuditTag.CONSENT_GRANT:
            tallies["consents_granted"][company].add(resident_id)
        elif tag == AuditTag.CONSENT_CHANGE and data.get("withdrawn") is True:
            tallies["consents_withdrawn"][company].add(resident_id)
        elif tag == AuditTag.RECORD_RELEASE:
            for category in data.get("categories") or []:
                tallies["releases"][str(category)].add(resident_id)
        elif tag == AuditTag.REFRESH_REUSE:
            tallies["incidents"]["refresh_token_reuse"].add(None)
        elif tag == AuditTag.CODE_REPLAY:
            tallies["incidents"]["authorization_code_replay"].add(None)
    for category, resident_id in db.session.execute(
            select(RegisteredRecord.category, RegisteredRecord.resident_id)
            .where(RegisteredRecord.received_at >= begin, RegisteredRecord.received_at < end)):
        tallies["contributions"][category].add(resident_id)
    for (rule,) in db.session.execute(
            select(MonitoringAlert.rule).where(MonitoringAlert.detected_at >= begin,
                                               MonitoringAlert.detected_at < end)):
        tallies["incidents"][f"monitoring:{rule}"].add(None)
    for (kind,) in db.session.execute(
            select(OutboxMessage.kind).where(OutboxMessage.status == DEAD,
                                             OutboxMessage.created_at >= begin,
                                             OutboxMessage.created_at < end)):
        tallies["incidents"][f"dead_letter:{kind}"].add(None)
    return tallies


def _safe(events: int, residents: int | None, k: int) -> bool:
    return events >= k and (residents is None or residents >= k)


def _publish(cells: dict[str, Tally], about_residents: bool, k: int) -> dict[str, Any]:
    """The total and the breakdown of one measure, small numbers as ``<k``."""
    def people(tally: Tally) -> int | None:
        return len(tally.residents) if about_residents else None

    small = f"<{k}"
    everyone: set[str] = set().union(*(t.residents for t in cells.values())) \
        if cells else set()
    total_events = sum(t.events for t in cells.values())
    total = total_events if _safe(total_events, len(everyone) if about_residents else None,
                                  k) else small
    kept = {key for key, tally in cells.items() if _safe(tally.events, people(tally), k)}
    hidden = [cells[key] for key in cells if key not in kept]

    def enough(group: list[Tally]) -> bool:
        if not group:
            return True
        residents = set().union(*(t.residents for t in group))
        return _safe(sum(t.events for t in group), len(residents) if about_residents else None,
                     k)

    for key in sorted(kept, key=lambda key: (cells[key].events, key)):
        if enough(hidden):
            break
        kept.discard(key)
        hidden.append(cells[key])
    breakdown = {key: cells[key].events if key in kept else small for key in sorted(cells)}
    return {"total": total, "breakdown": breakdown}


def summary(month: str, k: int | None = None, *, now: dt.datetime | None = None,
            via: str = "cli", audited: bool = True) -> dict[str, Any]:
    """The operation statistics of one closed month; audited when it is published (not
    when the console only shows it)."""
    settings = config.settings()
    k = settings.city_export_k if k is None else k
    if k < settings.city_export_k:
        raise OperationsError(f"k must be at least city_export_k ({settings.city_export_k})")
    now = now or utcnow()
    begin, end = month_bounds(month, now.astimezone(TIMEZONE).date())
    tallies = _tallies(begin, end)
    measures = {m: _publish(tallies[m], m in ABOUT_RESIDENTS, k) for m in MEASURES}
    measures["sign_ins"]["breakdown"] = {}
    if audited:
        record(AuditTag.REPORT_OPERATIONS, actor="cli" if via == "cli" else None, via=via,
               month=month, k=k)
    return {"month": month, "timezone": str(TIMEZONE), "k": k, "measures": measures}


def to_csv(report: dict[str, Any]) -> str:
    """One row per number: the measure's total (breakdown empty), then its breakdown."""
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(CSV_HEADER)
    for measure, numbers in report["measures"].items():
        writer.writerow([report["month"], measure, "", numbers["total"]])
        for key, count in numbers["breakdown"].items():
            writer.writerow([report["month"], measure, key, count])
    return buffer.getvalue()
