"""Which terms of use are current, publishing a new version, and acceptance.

The current version is the newest published row whose ``effective_at`` has
come. Before anything is published it is the ``terms_version`` setting with the
text shipped in the product (``idp/terms/text``), so an installation works from
the first day. Each published version carries its own full text (Japanese,
English) and a required change summary, so what a resident accepted can be
shown again as it was (``find``, ``history``). Publishing is a service call
(``publish_terms``) shared by ``idp terms publish`` and the admin console.

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

from flask import g
from flask import has_request_context
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select

from idp import config
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db
from idp.terms import document
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
    text: str = ""
    text_en: str = ""

    def summary_in(self, locale: str) -> str:
        """The summary for a page in ``locale``: Japanese unless an English one exists."""
        return self.summary_en if locale == "en" and self.summary_en else self.summary

    def text_in(self, locale: str) -> str:
        """The full text for a page in ``locale``: Japanese unless an English one exists."""
        return self.text_en if locale == "en" and self.text_en else self.text


def _bundled(version: str, url: str = "") -> Terms:
    """The settings' version with the text shipped in the product (idp/terms/text)."""
    return Terms(version=version, url=url, text=document.bundled("ja"),
                 text_en=document.bundled("en"))


def _from_row(row: TermsVersion) -> Terms:
    # Versions published before the text lived in the table show the bundled text.
    return Terms(version=row.version, url=row.url, summary=row.summary,
                 summary_en=row.summary_en, effective_at=row.effective_at,
                 text=row.text or document.bundled("ja"),
                 text_en=row.text_en or (document.bundled("en") if not row.text else ""))


def _newest(*columns, now: dt.datetime | None = None):
    """The newest published version whose ``effective_at`` has come (a SELECT of ``columns``)."""
    return (
        select(*columns)
        .where(TermsVersion.effective_at <= (utcnow() if now is None else now))
        .order_by(TermsVersion.effective_at.desc(), TermsVersion.published_at.desc())
        .limit(1)
    )


def current(now: dt.datetime | None = None) -> Terms:
    row = db.session.scalar(_newest(TermsVersion, now=now))
    if row is None:
        settings = config.settings()
        return _bundled(settings.terms_version, settings.terms_url)
    return _from_row(row)


def find(version: str, now: dt.datetime | None = None) -> Terms | None:
    """A version residents may read: published and in effect (or the settings' version
    while nothing in effect is published); None for anything else."""
    if not isinstance(version, str) or not VERSION.match(version):
        return None
    row = db.session.get(TermsVersion, version)
    if row is not None:
        return _from_row(row) if row.effective_at <= (now or utcnow()) else None
    if version == config.settings().terms_version:
        return _bundled(version, config.settings().terms_url)
    return None


def history(now: dt.datetime | None = None) -> list[Terms]:
    """Every version residents may read, newest first: the published ones in effect,
    then the settings' version they replaced (the text shipped with the product)."""
    rows = db.session.scalars(
        select(TermsVersion).where(TermsVersion.effective_at <= (now or utcnow()))
        .order_by(TermsVersion.effective_at.desc(), TermsVersion.published_at.desc()))
    found = [_from_row(row) for row in rows]
    settings = config.settings()
    if all(t.version != settings.terms_version for t in found):
        found.append(_bundled(settings.terms_version, settings.terms_url))
    return found


_VERSION_NOW = "idp_terms_version_now"
# One constant statement (its cache key computed once): the version in force at ``now``.
_VERSION_AT = _newest(TermsVersion.version, now=bindparam("now"))


def current_version() -> str:
    """The version in force now: its version only (not the row and its texts), read once
    per request. The authorization endpoint asks twice (has the resident accepted it,
    was the consent given under it), and a request is answered under one version."""
    if has_request_context() and _VERSION_NOW in g:
        return g.get(_VERSION_NOW)
    version = db.session.scalar(_VERSION_AT, {"now": utcnow()}) \
        or config.settings().terms_version
    if has_request_context():
        setattr(g, _VERSION_NOW, version)
    return version


def current_version_sql(now, default):
    """``current_version()`` as an SQL expression, for a query that checks a consent
    against the terms in force without a statement of its own. ``now`` and ``default``
    (the settings' version while nothing is published) are bound parameters: the
    statement is built once and run with each request's values
    (``idp.consent.service.in_force_values``)."""
    return func.coalesce(_newest(TermsVersion.version, now=now).scalar_subquery(), default)


def publish_terms(version: str, url: str = "", *, summary: str = "", summary_en: str = "",
                  text: str = "", text_en: str = "",
                  effective_at: dt.datetime | None = None,
                  actor: str | None = None) -> TermsVersion:
    """Publish a new version. From ``effective_at`` (default now) every resident must
    accept it at their next sign-in, and every consent is asked again.

    The summary of changes is required in both languages: it is what a resident asked
    to agree again reads first. Without ``text``/``text_en`` the new version carries the
    text of the newest version unchanged (a version that only asks everyone again)."""
    version = (version or "").strip()
    if not VERSION.match(version):
        raise TermsError("version must be 1 to 40 letters, digits, '.', '_' or '-'")
    url = (url or "").strip()
    if url and not re.match(r"^https?://[^\s]+$", url):
        raise TermsError("url must be an http(s) URL")
    if len(url) > 500:
        raise TermsError("url must be at most 500 characters")
    summary, summary_en = (summary or "").strip(), (summary_en or "").strip()
    if not summary or not summary_en:
        raise TermsError("say what changed, in Japanese and in English (summary, summary_en)")
    if len(summary) > 2000 or len(summary_en) > 2000:
        raise TermsError("the summary of changes must be at most 2000 characters")
    text = (text or "").replace("\r\n", "\n").strip()
    text_en = (text_en or "").replace("\r\n", "\n").strip()
    if not text or not text_en:
        latest = newest_text()
        text, text_en = text or latest.text, text_en or latest.text_en
    for language, body in (("ja", text), ("en", text_en)):
        if document.problems(body):
            raise TermsError(f"the {language} text must have at least one '## ' article "
                             f"and at most {document.MAX_TEXT} characters")
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
    row = TermsVersion(version=version, url=url, summary=summary, summary_en=summary_en,
                       text=text, text_en=text_en, effective_at=effective_at,
                       published_at=now, published_by=actor)
    db.session.add(row)
    db.session.flush()
    if has_request_context():
        g.pop(_VERSION_NOW, None)  # in force at once, for the rest of this request too
    record(AuditTag.TERMS_PUBLISH, actor=actor, version=version,
           effective_at=effective_at.isoformat())
    return row


def newest_text() -> Terms:
    """The text of the newest version, in effect or scheduled (what a new one starts from)."""
    row = db.session.scalar(
        select(TermsVersion).order_by(TermsVersion.effective_at.desc()).limit(1))
    return _from_row(row) if row is not None else _bundled(config.settings().terms_version)


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
