"""The neutral operator's monitoring (seed 004): rules that flag improper transactions.

``run`` evaluates the last complete window (``monitoring_window_minutes``) against
each company's own baseline, the mean over its previous
``monitoring_baseline_windows`` windows, and stores what it flags as a
``MonitoringAlert`` with its evidence (never twice for one rule, company, client
and subject in one window), audited ``MONITORING_ALERT`` and mailed to the admins
the caller names. The rules, each reading what the system already records:

- ``releases``       RECORD_RELEASE events of a company far above its baseline;
- ``contributions``  RECORD_CONTRIBUTE events of a company far above its baseline;
- ``never_served``   contributions for residents the company never served: subs it
                     was never released (``unknown_subjects`` of RECORD_REFUSED) and
                     residents it has a pairwise sub for but never a token or a
                     consent of any of its clients;
- ``token_reads``    one access token read (userinfo, resource APIs; ``token_reads``)
                     far more often than the company's tokens usually are;
- ``auth_failures``  a burst of failed client authentications (CLIENT_AUTH_FAILURE),
                     per client, or per address for ids that name no client.

"Far above" is ``max(minimum, factor × baseline)``: a quiet company's busy hour
below the minimum is never flagged. Thresholds are settings (``idp.config``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext
from sqlalchemy import func
from sqlalchemy import select

from idp import config
from idp.access.models import Token
from idp.audit.models import AuditEvent
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.consent.models import Consent
from idp.db import utcnow
from idp.exchange.models import MonitoringAlert
from idp.exchange.token_reads import TokenRead
from idp.extensions import db
from idp.mail import service as mail

RULES = ("releases", "contributions", "never_served", "token_reads", "auth_failures")


class MonitoringError(ValueError):
    pass


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    baseline_start: dt.datetime
    baseline_windows: int

    def iso(self) -> dict[str, str]:
        return {"window_start": self.start.isoformat(), "window_end": self.end.isoformat()}


@dataclass
class Finding:
    rule: str
    company_id: str | None
    client_id: str | None
    subject: str
    evidence: dict[str, Any]


def window(now: dt.datetime | None = None) -> Window:
    """The last complete window before ``now`` (windows are aligned to the epoch)."""
    settings = config.settings()
    length = dt.timedelta(minutes=settings.monitoring_window_minutes)
    now = now or utcnow()
    seconds = int(length.total_seconds())
    epoch = int(now.timestamp())
    end = dt.datetime.fromtimestamp(epoch - epoch % seconds, dt.UTC)
    start = end - length
    windows = settings.monitoring_baseline_windows
    return Window(start, end, start - windows * length, windows)


def _threshold(baseline: float, minimum: int, factor: int) -> float:
    return max(float(minimum), factor * baseline)


def _counts(tag: AuditTag, start: dt.datetime, end: dt.datetime) -> Counter:
    rows = db.session.execute(
        select(AuditEvent.company_id, func.count()).where(
            AuditEvent.tag == str(tag), AuditEvent.at >= start, AuditEvent.at < end,
            AuditEvent.company_id.is_not(None)).group_by(AuditEvent.company_id))
    return Counter({company_id: n for company_id, n in rows})


def _volume(rule: str, tag: AuditTag, w: Window) -> list[Finding]:
    settings = config.settings()
    now = _counts(tag, w.start, w.end)
    before = _counts(tag, w.baseline_start, w.start)
    findings = []
    for company_id, count in sorted(now.items()):
        baseline = before[company_id] / w.baseline_windows
        threshold = _threshold(baseline, settings.monitoring_volume_minimum,
                               settings.monitoring_volume_factor)
        if count >= threshold:
            events = db.session.execute(select(AuditEvent.client_id, AuditEvent.data).where(
                AuditEvent.tag == str(tag), AuditEvent.company_id == company_id,
                AuditEvent.at >= w.start, AuditEvent.at < w.end)).all()
            by_category: Counter = Counter()
            for _client, data in events:
                keys = (data or {}).get("categories") or [(data or {}).get("category")]
                by_category.update(k for k in keys if k)
            findings.append(Finding(rule, company_id, None, "", {
                "count": count, "baseline_per_window": round(baseline, 2),
                "threshold": threshold, "baseline_windows": w.baseline_windows,
                "by_client": dict(Counter(c for c, _ in events if c).most_common(10)),
                "by_category": dict(by_category.most_common(20))}))
    return findings


def _ever_served(company_id: str, resident_ids: set[str]) -> set[str]:
    """Which of the residents ever had a token or a consent of the company's clients."""
    if not resident_ids:
        return set()
    clients = select(Client.id).where(Client.company_id == company_id)
    tokens = set(db.session.scalars(select(Token.resident_id).where(
        Token.client_id.in_(clients), Token.resident_id.in_(resident_ids))))
    consents = set(db.session.scalars(select(Consent.resident_id).where(
        Consent.client_id.in_(clients), Consent.resident_id.in_(resident_ids))))
    return tokens | consents


def _never_served(w: Window) -> list[Finding]:
    settings = config.settings()
    unknown: Counter = Counter()
    for company_id, data in db.session.execute(
            select(AuditEvent.company_id, AuditEvent.data).where(
                AuditEvent.tag == str(AuditTag.RECORD_REFUSED),
                AuditEvent.at >= w.start, AuditEvent.at < w.end)):
        if company_id and (data or {}).get("reason") == "unknown_subject":
            unknown[company_id] += int((data or {}).get("unknown_subjects") or 0)
    contributed: dict[str, set[str]] = defaultdict(set)
    for company_id, resident_id in db.session.execute(
            select(AuditEvent.company_id, AuditEvent.resident_id).where(
                AuditEvent.tag == str(AuditTag.RECORD_CONTRIBUTE),
                AuditEvent.at >= w.start, AuditEvent.at < w.end)):
        if company_id and resident_id:
            contributed[company_id].add(resident_id)
    findings = []
    for company_id in sorted(set(unknown) | set(contributed)):
        residents = contributed.get(company_id, set())
        unserved = len(residents - _ever_served(company_id, residents))
        total = unknown[company_id] + unserved
        if total >= settings.monitoring_never_served_minimum:
            findings.append(Finding("never_served", company_id, None, "", {
                "residents_never_served": total, "unknown_subs": unknown[company_id],
                "subs_without_token_or_consent": unserved,
                "residents_contributed_for": len(residents),
                "threshold": settings.monitoring_never_served_minimum}))
    return findings


def _token_reads(w: Window) -> list[Finding]:
    settings = config.settings()
    rows = db.session.execute(select(TokenRead.token_id, TokenRead.bucket,
                                     TokenRead.client_id, TokenRead.company_id,
                                     TokenRead.count).where(
        TokenRead.bucket >= w.baseline_start, TokenRead.bucket < w.end)).all()
    length = w.end - w.start
    now: Counter = Counter()
    client_of: dict[int, tuple[str, str]] = {}
    usual: dict[str, Counter] = defaultdict(Counter)  # company → (token, window) → reads
    for token_id, bucket, client_id, company_id, count in rows:
        client_of[token_id] = (client_id, company_id)
        if bucket >= w.start:
            now[token_id] += count
        else:
            usual[company_id][(token_id, (bucket - w.baseline_start) // length)] += count
    by_client: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for token_id, reads in sorted(now.items()):
        client_id, company_id = client_of[token_id]
        history = usual[company_id]
        mean = sum(history.values()) / len(history) if history else 0.0
        threshold = _threshold(mean, settings.monitoring_token_reads_minimum,
                               settings.monitoring_token_reads_factor)
        if reads >= threshold:
            by_client[(company_id, client_id)].append(
                {"token_id": token_id, "reads": reads, "usual_reads_per_token": round(mean, 2),
                 "threshold": threshold})
    return [Finding("token_reads", company_id, client_id, "", {"tokens": tokens})
            for (company_id, client_id), tokens in sorted(by_client.items())]


def _auth_failures(w: Window) -> list[Finding]:
    settings = config.settings()
    groups: dict[tuple, list] = defaultdict(list)
    for client_id, company_id, ip, data in db.session.execute(
            select(AuditEvent.client_id, AuditEvent.company_id, AuditEvent.ip,
                   AuditEvent.data).where(
                AuditEvent.tag == str(AuditTag.CLIENT_AUTH_FAILURE),
                AuditEvent.at >= w.start, AuditEvent.at < w.end)):
        key = (company_id, client_id, "" if client_id else f"address:{ip or 'unknown'}")
        groups[key].append((ip, (data or {}).get("claimed"), (data or {}).get("endpoint")))
    findings = []
    for (company_id, client_id, subject), failures in sorted(groups.items(),
                                                            key=lambda kv: str(kv[0])):
        if len(failures) >= settings.monitoring_auth_failures_minimum:
            findings.append(Finding("auth_failures", company_id, client_id, subject, {
                "failures": len(failures), "threshold": settings.monitoring_auth_failures_minimum,
                "addresses": dict(Counter(ip or "unknown" for ip, _, _ in failures)
                                  .most_common(10)),
                "endpoints": dict(Counter(e or "token" for _, _, e in failures)),
                "claimed_ids": sorted({c for _, c, _ in failures if c})[:10]}))
    return findings


def evaluate(w: Window) -> list[Finding]:
    """Every rule over one window (nothing stored)."""
    return [*_volume("releases", AuditTag.RECORD_RELEASE, w),
            *_volume("contributions", AuditTag.RECORD_CONTRIBUTE, w),
            *_never_served(w), *_token_reads(w), *_auth_failures(w)]


def _exists(finding: Finding, w: Window) -> bool:
    rows = db.session.scalars(select(MonitoringAlert).where(
        MonitoringAlert.rule == finding.rule, MonitoringAlert.window_start == w.start,
        MonitoringAlert.company_id.is_(None) if finding.company_id is None
        else MonitoringAlert.company_id == finding.company_id,
        MonitoringAlert.client_id.is_(None) if finding.client_id is None
        else MonitoringAlert.client_id == finding.client_id))
    return any((row.evidence or {}).get("subject", "") == finding.subject for row in rows)


def run(now: dt.datetime | None = None, admin_emails: list[str] | None = None,
        actor: str = "worker") -> list[MonitoringAlert]:
    """Evaluate the last complete window; store, audit and mail the new alerts."""
    w = window(now)
    created = []
    for finding in evaluate(w):
        if _exists(finding, w):
            continue
        evidence = {**finding.evidence, "subject": finding.subject}
        alert = MonitoringAlert(rule=finding.rule, company_id=finding.company_id,
                                client_id=finding.client_id, window_start=w.start,
                                window_end=w.end, evidence=evidence)
        db.session.add(alert)
        db.session.flush()
        record(AuditTag.MONITORING_ALERT, actor=actor, company_id=finding.company_id,
               client_id=finding.client_id, alert_id=alert.id, rule=finding.rule, **w.iso())
        created.append(alert)
    if created and admin_emails:
        mail.queue([_message(to, created, w) for to in admin_emails])
    return created


def _message(to: str, created: list[MonitoringAlert], w: Window) -> mail.Message:
    """The admins' mail (in Japanese, the console's first language). Composed here rather
    than from a page template: the worker mails outside any request."""
    settings = config.settings()
    with force_locale("ja"):
        subject = gettext("Monitoring: %(count)s new alert(s)", count=len(created))
        intro = gettext("The data exchange monitoring flagged the following in the window "
                        "%(start)s to %(end)s (UTC).",
                        start=w.start.strftime("%Y-%m-%d %H:%M"),
                        end=w.end.strftime("%Y-%m-%d %H:%M"))
        outro = gettext("The evidence is on the console, where an alert is acknowledged:")
    lines = [f"- #{a.id} {a.rule} {a.company_id or '-'} {a.client_id or ''}".rstrip()
             for a in created]
    body = "\n".join([intro, "", *lines, "", outro, f"{settings.issuer}/admin/monitoring",
                      "", "--", f"{settings.consortium_name} / Machi ID"]) + "\n"
    return mail.Message(to=to, subject=subject, body=body)


def alerts(*, open_only: bool = False, limit: int = 200) -> list[MonitoringAlert]:
    query = select(MonitoringAlert).order_by(MonitoringAlert.detected_at.desc(),
                                             MonitoringAlert.id.desc()).limit(limit)
    if open_only:
        query = query.where(MonitoringAlert.acknowledged_at.is_(None))
    return list(db.session.scalars(query))


def acknowledge(alert_id: int, admin_id: str | None, actor: str = "admin") -> MonitoringAlert:
    alert = db.session.get(MonitoringAlert, alert_id) if isinstance(alert_id, int) else None
    if alert is None:
        raise MonitoringError("no such alert")
    if alert.acknowledged_at is not None:
        raise MonitoringError("the alert was acknowledged already")
    alert.acknowledged_at = utcnow()
    alert.acknowledged_by = admin_id
    record(AuditTag.MONITORING_ACKNOWLEDGE, actor=actor, admin_id=admin_id,
           company_id=alert.company_id, client_id=alert.client_id, alert_id=alert.id,
           rule=alert.rule)
    return alert


def describe(alert: MonitoringAlert) -> dict[str, Any]:
    return {"id": alert.id, "rule": alert.rule, "company_id": alert.company_id,
            "client_id": alert.client_id, "window_start": alert.window_start.isoformat(),
            "window_end": alert.window_end.isoformat(), "evidence": alert.evidence,
            "detected_at": alert.detected_at.isoformat(),
            "acknowledged_at": alert.acknowledged_at.isoformat()
            if alert.acknowledged_at else None, "acknowledged_by": alert.acknowledged_by}
