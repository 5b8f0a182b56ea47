"""Which terms of use are current, publishing a new version, and acceptance.

The current version is the newest published row whose ``effective_at`` has
come. Before anything is published it is the ``terms_version`` setting (with
``terms_url``), so an installation works from the first day. Publishing is a
service call (``publish_terms``) shared by ``idp terms publish`` and, later,
the admin console.

A resident who has not accepted the current version is stopped at the next
sign-in and at the next authorization request, before anything is released
(the ``terms_accepted`` check of ``idp.interaction.policy``); consents given
under another version are asked again (``idp.consent.service``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import String
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import select

from idp import config
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db
from idp.terms.models import TermsVersion

VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$")


class TermsError(ValueError):
    """Invalid terms data; the message says what is wrong."""


@dataclass(frozen=True)
class Terms:
    """The terms in force: a published row, or the settings before any was published."""

    version: str
    url: str
    summary: str = ""
    summary_en: str = ""
    effective_at: dt.datetime | None = None

    def summary_in(self, locale: str) -> str:
        """The summary for a page in ``locale``: Japanese unless an English one exists."""
        return self.summary_en if locale == "en" and self.summary_en else self.summary


def _newest(*columns, now: dt.datetime | None = None):
    """The newest published version whose ``effective_at`` has come (a SELECT of ``columns``)."""
    return (
        select(*columns)
        .where(TermsVersion.effective_at <= (now or utcnow()))
        .order_by(TermsVersion.effective_at.desc(), TermsVersion.published_at.desc())
        .limit(1)
    )


def current(now: dt.datetime | None = None) -> Terms:
    row = db.session.scalar(_newest(TermsVersion, now=now))
    if row is None:
        settings = config.settings()
        return Terms(version=settings.terms_version, url=settings.terms_url)
    return Terms(version=row.version, url=row.url, summary=row.summary,
                 summary_en=row.summary_en, effective_at=row.effective_at)


def current_version() -> str:
    return current().version


def current_version_sql(now: dt.datetime | None = None):
    """``current_version()`` as an SQL expression, for a query that checks a consent
    against the terms in force without a statement of its own."""
    return func.coalesce(_newest(TermsVersion.version, now=now).scalar_subquery(),
                         literal(config.settings().terms_version, String(40)))


def publish_terms(version: str, url: str = "", *, summary: str = "", summary_en: str = "",
                  effective_at: dt.datetime | None = None,
                  actor: str | None = None) -> TermsVersion:
    """Publish a new version. From ``effective_at`` (default now) every resident must
    accept it at their next sign-in, and every consent is asked again."""
    version = (version or "").strip()
    if not VERSION.match(version):
        raise TermsError("version must be 1 to 40 letters, digits, '.', '_' or '-'")
    url = (url or "").strip()
    if url and not re.match(r"^https?://[^\s]+$", url):
        raise TermsError("url must be an http(s) URL")
    if len(url) > 500:
        raise TermsError("url must be at most 500 characters")
    now = utcnow()
    effective_at = effective_at or now
    if effective_at.tzinfo is None:
        raise TermsError("effective_at must carry a time zone")
    if db.session.get(TermsVersion, version) is not None:
        raise TermsError(f"version {version} has already been published")
    newest = db.session.scalar(
        select(TermsVersion).order_by(TermsVersion.effective_at.desc()).limit(1))
    if newest is not None and effective_at <= newest.effective_at:
        raise TermsError(f"effective_at must be after that of version {newest.version}")
    row = TermsVersion(version=version, url=url, summary=summary.strip(),
                       summary_en=summary_en.strip(), effective_at=effective_at,
                       published_at=now, published_by=actor)
    db.session.add(row)
    db.session.flush()
    record(AuditTag.TERMS_PUBLISH, actor=actor, version=version,
           effective_at=effective_at.isoformat())
    return row


def versions() -> list[TermsVersion]:
    return list(db.session.scalars(
        select(TermsVersion).order_by(TermsVersion.effective_at.desc())))


class Accepting(Protocol):
    """What the terms know of a resident: the version accepted and when. The
    accounts package (registration) calls the terms, so the terms never import it."""

    id: str
    terms_version: str | None
    terms_accepted_at: dt.datetime | None


def needs_acceptance(resident: Accepting) -> bool:
    """True while the resident has not accepted the terms now in force."""
    return resident.terms_version != current_version()


def accept(resident: Accepting, version: str) -> None:
    """Record acceptance of ``version``, which must be the current one (a page left
    open across a publication cannot accept terms the resident has not seen)."""
    if version != current_version():
        raise TermsError("these terms are no longer the current version")
    if resident.terms_version == version:
        return  # accepted already (a second tab, a double submit)
    resident.terms_version = version
    resident.terms_accepted_at = utcnow()
    record(AuditTag.TERMS_ACCEPT, resident_id=resident.id, version=version)
