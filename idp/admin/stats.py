"""Counts for the dashboard and the usage reports, per day and hour in Japan time.

Days and hours are those of Asia/Tokyo (no daylight saving: a fixed +9
hours), whatever the server's zone. Grouping happens in SQL (``local_day``,
``local_hour``), so a month of token issuances is one query, not a million
rows.

Consents over time are replayed from the audit trail (``consent_intervals``):
the ``consents`` table keeps only each pair's latest state, the trail keeps
every grant and withdrawal. A consent counts from its grant until it is
withdrawn or ``consent_ttl_days`` pass without a renewal. Consents of IDs
that were deleted have been de-identified in the trail and drop out.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select

from idp import config
from idp.accounts.models import Resident
from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.clients.models import Company
from idp.extensions import db
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent
from idp.locales import TIMEZONE
from idp.locales import japan_today

CONSENT_TAGS = (str(AuditTag.CONSENT_GRANT), str(AuditTag.CONSENT_CHANGE))
TOKEN_TAGS = (str(AuditTag.TOKEN_ISSUE), str(AuditTag.TOKEN_REFRESH))
RESIDENT_LOGIN_FAILURES = (str(AuditTag.LOGIN_FAILURE), str(AuditTag.TOTP_FAILURE))
ADMIN_LOGIN_FAILURES = (str(AuditTag.ADMIN_LOGIN_FAILURE),)


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def local_day(column):
    """SQL: the Japan-time date of a UTC timestamp column, as 'YYYY-MM-DD'."""
    if _dialect() == "postgresql":
        return func.to_char(func.timezone("Asia/Tokyo", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column, "+9 hours")


def local_hour(column):
    """SQL: the Japan-time hour (0-23) of a UTC timestamp column, as text 'HH'."""
    if _dialect() == "postgresql":
        return func.to_char(func.timezone("Asia/Tokyo", column), "HH24")
    return func.strftime("%H", column, "+9 hours")


def today() -> dt.date:
    return japan_today()


def day_start(day: dt.date) -> dt.datetime:
    """00:00 Japan time of ``day``, in UTC."""
    return dt.datetime.combine(day, dt.time(), TIMEZONE).astimezone(dt.UTC)


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def events_per_day(tags: tuple[str, ...], first: dt.date, last: dt.date,
                   **where) -> list[int]:
    """Audit events with one of ``tags`` per day from ``first`` to ``last``."""
    day = local_day(AuditEvent.at)
    query = (select(day, func.count()).where(
        AuditEvent.tag.in_(tags), AuditEvent.at >= day_start(first),
        AuditEvent.at < day_start(last + dt.timedelta(days=1))).group_by(day))
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    counts = dict(db.session.execute(query).all())
    return [counts.get(d.isoformat(), 0) for d in days(first, last)]


def residents_per_day(first: dt.date, last: dt.date) -> list[int]:
    """Residents registered at the end of each day (IDs deleted since are not counted)."""
    before = db.session.scalar(select(func.count()).select_from(Resident)
                               .where(Resident.created_at < day_start(first))) or 0
    day = local_day(Resident.created_at)
    end = day_start(last + dt.timedelta(days=1))
    new = dict(db.session.execute(
        select(day, func.count())
        .where(Resident.created_at >= day_start(first), Resident.created_at < end)
        .group_by(day)).all())
    totals, running = [], before
    for d in days(first, last):
        running += new.get(d.isoformat(), 0)
        totals.append(running)
    return totals


def companies_by_status() -> dict[str, int]:
    return dict(db.session.execute(
        select(Company.status, func.count()).group_by(Company.status)).all())


@dataclass
class Interval:
    start: dt.datetime
    end: dt.datetime  # withdrawal, or expiry without renewal


def consent_intervals(client_ids: list[str] | None = None,
                      until: dt.datetime | None = None) -> dict[tuple[str, str], list[Interval]]:
    """When each (resident, client) pair had a consent in force, from the audit trail."""
    ttl = dt.timedelta(days=config.settings().consent_ttl_days)
    query = (select(AuditEvent.resident_id, AuditEvent.client_id, AuditEvent.tag,
                    AuditEvent.at, AuditEvent.data)
             .where(AuditEvent.tag.in_(CONSENT_TAGS), AuditEvent.resident_id.is_not(None),
                    AuditEvent.client_id.is_not(None))
             .order_by(AuditEvent.id))
    if client_ids is not None:
        query = query.where(AuditEvent.client_id.in_(client_ids))
    if until is not None:
        query = query.where(AuditEvent.at < until)
    intervals: dict[tuple[str, str], list[Interval]] = defaultdict(list)
    for resident_id, client_id, tag, at, data in db.session.execute(query):
        spans = intervals[(resident_id, client_id)]
        current = spans[-1] if spans and spans[-1].end > at else None
        if tag == AuditTag.CONSENT_CHANGE and (data or {}).get("withdrawn"):
            if current is not None:
                current.end = at
            continue
        if current is not None:
            current.end = at + ttl  # a renewal or change extends the consent
        else:
            spans.append(Interval(at, at + ttl))
    return intervals


def active_consents_per_company(first: dt.date, last: dt.date) -> dict[str, list[int]]:
    """Consents in force at the end of each day, per company."""
    ends = [day_start(d + dt.timedelta(days=1)) for d in days(first, last)]
    company_of = dict(db.session.execute(select(Client.id, Client.company_id)).all())
    result: dict[str, list[int]] = defaultdict(lambda: [0] * len(ends))
    for (_resident, client_id), spans in consent_intervals(until=ends[-1]).items():
        company = company_of.get(client_id)
        if company is None:
            continue
        for i, moment in enumerate(ends):
            if any(s.start < moment <= s.end for s in spans):
                result[company][i] += 1
    return dict(result)


def touches_per_kiosk_hour(day: dt.date) -> list[tuple[Kiosk, list[int]]]:
    """Touch events per kiosk and hour of ``day`` (every kiosk, zeros included)."""
    hour = local_hour(TouchEvent.occurred_at)
    rows = db.session.execute(
        select(TouchEvent.client_id, hour, func.count())
        .where(TouchEvent.occurred_at >= day_start(day),
               TouchEvent.occurred_at < day_start(day + dt.timedelta(days=1)))
        .group_by(TouchEvent.client_id, hour)).all()
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    for client_id, h, n in rows:
        counts[client_id][int(h)] = n
    kiosks = db.session.scalars(select(Kiosk).order_by(Kiosk.created_at)).all()
    return [(kiosk, counts[kiosk.client_id]) for kiosk in kiosks]
