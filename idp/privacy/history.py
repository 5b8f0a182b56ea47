"""The usage record (利用実績): what happened with the resident's ID, newest first.

Two sources, merged in one ordered query so pagination is exact:

- the audit trail rows about the resident: every release of data to a company
  (``oauth:claims:release``: which company, which service, which items, when),
  every sign-in (and failed attempt on the account), consents given, changed,
  declined or withdrawn, terms accepted, and changes to the account;
- registered data member companies sent about the resident (each contribution:
  which company, which service, which category, when) and what the resident did
  about it (deleted or disputed an item, stopped or resumed collection);
- touch events that kiosks recorded against the resident (which kiosk, where,
  which content, when).

Filtering by company keeps the rows whose company is that company (for touch
events, the company of the kiosk).

Each source is a domain's part (``SOURCES``: its rows, the companies in them,
its events by id); how an entry reads (titles, consent items) is written here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy import union_all

from idp import scopes
from idp.audit import service as audit
from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.clients.models import Company
from idp.consent.items import items_for
from idp.exchange import categories
from idp.exchange.models import Category
from idp.extensions import db
from idp.kiosk import service as kiosk
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent

PAGE_SIZE = 30
MAX_PAGE = 10_000

# Tags a resident sees in their history; the rest of the trail is operational.
SHOWN = (
    AuditTag.CLAIMS_RELEASE, AuditTag.LOGIN_SUCCESS, AuditTag.LOGIN_FAILURE,
    AuditTag.TOTP_FAILURE, AuditTag.CONSENT_GRANT, AuditTag.CONSENT_CHANGE,
    AuditTag.CONSENT_DENY, AuditTag.TERMS_ACCEPT, AuditTag.RESIDENT_CREATE,
    AuditTag.PROFILE_CHANGE, AuditTag.EMAIL_CHANGE, AuditTag.EMAIL_VERIFY,
    AuditTag.PASSWORD_CHANGE, AuditTag.PASSWORD_RESET, AuditTag.TOTP_ENABLE,
    AuditTag.TOTP_DISABLE, AuditTag.RECOVERY_CODE_USE, AuditTag.DATA_EXPORT,
    AuditTag.DEVICE_APPROVE, AuditTag.RECORD_CONTRIBUTE, AuditTag.RESIDENT_DATA_DELETE,
    AuditTag.RESIDENT_DATA_DISPUTE, AuditTag.COLLECTION_STOP, AuditTag.COLLECTION_RESUME,
)

# Released claim → the consent item it belongs to (the registry's, idp.scopes; the
# pairwise ``sub`` is not a released item here).
CLAIM_ITEMS = {claim: scope for scope, released in scopes.claims().items()
               for claim in released if claim != "sub"}


# What the resident did about registered data (idp.exchange.residents).
EXCHANGE_TITLES = {
    AuditTag.RESIDENT_DATA_DELETE: _l("Registered data deleted"),
    AuditTag.RESIDENT_DATA_DISPUTE: _l("Registered data reported as wrong"),
    AuditTag.COLLECTION_STOP: _l("Collection of registered data stopped"),
    AuditTag.COLLECTION_RESUME: _l("Collection of registered data resumed"),
}


@dataclass
class Entry:
    kind: str
    at: dt.datetime
    title: str
    company: str | None = None
    service: str | None = None
    items: list[str] = field(default_factory=list)
    note: str | None = None
    location: str | None = None


@dataclass
class Page:
    entries: list[Entry]
    page: int
    pages: int
    total: int
    company: str | None
    companies: list[tuple[str, str]]  # (id, name) for the filter


@dataclass(frozen=True)
class Source:
    """One domain's part of the usage record: its rows (``row_id``, ``at``) for a
    resident and maybe one company, the companies in them, and a page's entries by
    row id (the domain loads its events; how they read is written here)."""

    rows: Callable[[str, str | None], Select]
    companies: Callable[[str], Select]
    entries: Callable[[list[int]], dict[int, Entry]]


# Every source of the usage record; a new domain adds one line.
SOURCES = {
    "audit": Source(rows=lambda rid, company: audit.history_rows(rid, SHOWN, company),
                    companies=lambda rid: audit.history_companies(rid, SHOWN),
                    entries=lambda ids: _audit_entries(audit.history_events(ids))),
    "touch": Source(rows=kiosk.history_rows, companies=kiosk.history_companies,
                    entries=lambda ids: {i: _touch_entry(_TouchRow(*row))
                                         for i, row in kiosk.history_events(ids).items()}),
}


def _sources(resident_id: str, company_id: str | None):
    return union_all(*(part.rows(resident_id, company_id).add_columns(
        literal(name).label("source")) for name, part in SOURCES.items())).subquery()


def companies(resident_id: str) -> list[tuple[str, str]]:
    """The companies that appear in the resident's history, for the filter."""
    ids = set()
    for part in SOURCES.values():
        ids |= set(db.session.scalars(part.companies(resident_id).distinct()))
    if not ids:
        return []
    rows = db.session.execute(select(Company.id, Company.name).where(Company.id.in_(ids)))
    return sorted(((r.id, r.name) for r in rows), key=lambda r: (r[1], r[0]))


def history(resident_id: str, page: int = 1, company_id: str | None = None) -> Page:
    choices = companies(resident_id)
    if company_id not in {c[0] for c in choices}:
        company_id = None
    source = _sources(resident_id, company_id)
    total = db.session.scalar(select(func.count()).select_from(source)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages, MAX_PAGE)
    rows = db.session.execute(
        select(source.c.source, source.c.row_id)
        .order_by(source.c.at.desc(), source.c.source, source.c.row_id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    loaded = {name: part.entries([r.row_id for r in rows if r.source == name])
              for name, part in SOURCES.items()}
    entries = [loaded[row.source][row.row_id] for row in rows]
    return Page(entries, page, pages, total, company_id, choices)


@dataclass
class _TouchRow:
    event: TouchEvent
    client: Client
    kiosk: Kiosk | None


def _audit_entries(events: dict[int, AuditEvent]) -> dict[int, Entry]:
    names = _names({e.client_id for e in events.values() if e.client_id},
                   {e.company_id for e in events.values() if e.company_id})
    return {row_id: _audit_entry(event, names) for row_id, event in events.items()}


def _names(client_ids: set[str], company_ids: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    if client_ids:
        names.update((row.id, row.name) for row in db.session.execute(
            select(Client.id, Client.name).where(Client.id.in_(client_ids))))
    if company_ids:
        names.update((row.id, row.name) for row in db.session.execute(
            select(Company.id, Company.name).where(Company.id.in_(company_ids))))
    return names


REGISTERED = "registered_data."


def released_items(claims: list[str]) -> list[str]:
    """Claim names → the consent items' labels, in the order of the consent screen; the
    registered data released (``registered_data.<key>``) by their categories' labels."""
    fixed = [str(item.label) for item in items_for({CLAIM_ITEMS[c] for c in claims
                                                    if c in CLAIM_ITEMS})]
    registered = [c[len(REGISTERED):] for c in claims if c.startswith(REGISTERED)]
    return [*fixed, *category_labels(registered)]


def scope_labels(granted: list[str]) -> list[str]:
    return [str(item.label) for item in items_for(granted or [])]


def category_labels(keys: list) -> list[str]:
    """Registered-data category keys → their labels in the page's language (a key
    no longer known is shown as it is)."""
    locale = str(get_locale() or "ja")
    labels = []
    for key in keys:
        if not isinstance(key, str):
            continue
        category = db.session.get(Category, key)
        labels.append(categories.label(category, locale) if category else key)
    return labels


def _audit_entry(event: AuditEvent, names: dict[str, str]) -> Entry:
    data = event.data or {}
    company = names.get(event.company_id or "")
    service = names.get(event.client_id or "")
    base = dict(at=event.at, company=company, service=service)
    tag = event.tag
    if tag == AuditTag.CLAIMS_RELEASE:
        channel = data.get("channel")
        note = _("When you signed in to the service") if channel == "id_token" else (
            _("Fetched later by the service") if channel == "userinfo" else None)
        return Entry("release", title=_("Information provided to a service"),
                     items=released_items(data.get("claims") or []), note=note, **base)
    if tag == AuditTag.LOGIN_SUCCESS:
        second = "otp" in (data.get("amr") or [])
        return Entry("sign_in", title=_("Signed in to Machi ID"),
                     note=_("With password and authentication app") if second else None,
                     location=event.ip, **base)
    if tag == AuditTag.LOGIN_FAILURE:
        return Entry("security", title=_("Failed sign-in (wrong password)"),
                     location=event.ip, **base)
    if tag == AuditTag.TOTP_FAILURE:
        return Entry("security", title=_("Failed sign-in (wrong authentication code)"),
                     location=event.ip, **base)
    if tag == AuditTag.CONSENT_GRANT:
        return Entry("consent", title=_("Consent given"),
                     items=scope_labels(data.get("scopes")), **base)
    if tag == AuditTag.CONSENT_CHANGE and data.get("withdrawn"):
        return Entry("withdrawal", title=_("Consent withdrawn"), **base)
    if tag == AuditTag.CONSENT_CHANGE:
        return Entry("consent", title=_("Consent renewed or changed"),
                     items=scope_labels(data.get("scopes")), **base)
    if tag == AuditTag.CONSENT_DENY:
        return Entry("consent", title=_("Consent declined"), **base)
    if tag == AuditTag.RECORD_CONTRIBUTE:
        return Entry("contribution", title=_("Registered data received from a company"),
                     items=category_labels([data.get("category")]), **base)
    if tag in EXCHANGE_TITLES:
        return Entry("registered_data", title=str(EXCHANGE_TITLES[tag]),
                     items=category_labels([data.get("category")]), **base)
    if tag == AuditTag.DEVICE_APPROVE:
        return Entry("sign_in", title=_("Sign-in on a kiosk approved"), **base)
    titles = {
        AuditTag.TERMS_ACCEPT: _("Terms of use accepted (version %(version)s)",
                                 version=data.get("version", "")),
        AuditTag.RESIDENT_CREATE: _("Consortium ID issued"),
        AuditTag.PROFILE_CHANGE: _("Registered information changed"),
        AuditTag.EMAIL_CHANGE: _("Email address changed"),
        AuditTag.EMAIL_VERIFY: _("Email address verified"),
        AuditTag.PASSWORD_CHANGE: _("Password changed"),
        AuditTag.PASSWORD_RESET: _("Password reset by email"),
        AuditTag.TOTP_ENABLE: _("Two-step verification turned on"),
        AuditTag.TOTP_DISABLE: _("Two-step verification turned off"),
        AuditTag.RECOVERY_CODE_USE: _("Recovery code used to sign in"),
        AuditTag.DATA_EXPORT: _("Data downloaded"),
    }
    return Entry("account", title=titles.get(tag, tag), **base)


def _touch_entry(row: _TouchRow) -> Entry:
    return Entry("touch", at=row.event.occurred_at, title=_("Touched a signage kiosk"),
                 company=row.client.company.name, service=row.client.name,
                 location=row.kiosk.location if row.kiosk else None, note=row.event.target)
