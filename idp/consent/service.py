"""Consent rules, shared by the consent screen and (later) the device flow.

Named, ordered checks decide whether the resident must be asked
(node-oidc-provider's ``interaction_policy/prompts/consent.js``):

1. ``no_consent``       nothing given yet for this client, or it was withdrawn;
2. ``consent_expired``  given longer ago than ``consent_ttl_days``;
3. ``terms_changed``    given under another consortium terms version;
4. ``new_scopes``       the client asks for an item never decided on (or a part of
                        one: a verified claim name not asked for before);
5. ``prompt_consent``   the client sent ``prompt=consent``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp import config
from idp.access import security_events
from idp.access import service as access
from idp.accounts.models import Resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.consent import receipts
from idp.consent.items import REQUIRED_SCOPES
from idp.consent.items import item_of
from idp.consent.models import Consent
from idp.consent.models import ConsentReceipt
from idp.db import delete_where
from idp.db import utcnow
from idp.extensions import db
from idp.terms import service as terms

if TYPE_CHECKING:
    from idp.access.models import AuthorizationCode
    from idp.access.models import Token


class ConsentError(ValueError):
    pass


def find(resident_id: str, client_id: str) -> Consent | None:
    return db.session.scalar(
        select(Consent).where(Consent.resident_id == resident_id, Consent.client_id == client_id)
    )


def reasons_for(consent: Consent | None, requested: list[str],
                prompt_consent: bool = False) -> list[str]:
    """Why the consent screen must be shown, given the pair's consent row as read
    (``find``); empty when it is a consent in force that covers the request. With no
    reason, the row is the consent in force (the conditions of ``_in_force``), and its
    ``scopes`` are what ``scopes_in_force`` would read."""
    now = utcnow()
    reasons = []
    if consent is None or consent.withdrawn_at is not None:
        reasons.append("no_consent")
    else:
        if consent.expires_at <= now:
            reasons.append("consent_expired")
        if consent.terms_version != terms.current_version():
            reasons.append("terms_changed")
        decided = set(consent.scopes) | set(consent.declined_scopes)
        if set(requested) - decided:
            reasons.append("new_scopes")
    if prompt_consent:
        reasons.append("prompt_consent")
    return reasons


def _in_force(resident_id, client_id, now, default_terms) -> tuple:
    """The conditions of "the consent in force" for a (resident, client) pair: not
    withdrawn, not expired, given under the terms now in force. One definition, in SQL,
    so it can also ride along with a token's own lookup (``in_force_sql``)."""
    return (
        Consent.resident_id == resident_id,
        Consent.client_id == client_id,
        Consent.withdrawn_at.is_(None),
        Consent.expires_at > now,
        Consent.terms_version == terms.current_version_sql(now, default_terms),
    )


# The moment and the settings' terms version a statement built once is run with
# (``in_force_values``): the statements below are constants, so SQLAlchemy builds,
# keys and compiles each once per process, not on every request (docs/performance.md).
NOW = bindparam("consent_now", type_=Consent.expires_at.type)
DEFAULT_TERMS = bindparam("consent_default_terms", type_=String(40))


def in_force_values() -> dict:
    """The parameters of a statement that reads the consent in force (``in_force_sql``)."""
    return {"consent_now": utcnow(), "consent_default_terms": config.settings().terms_version}


_SCOPES_IN_FORCE = select(Consent.scopes).where(
    *_in_force(bindparam("resident_id"), bindparam("client_id"), NOW, DEFAULT_TERMS))


def scopes_in_force(resident_id: str, client_id: str) -> set[str]:
    """The items of the consent in force for this pair (empty set if none)."""
    scopes = db.session.scalar(_SCOPES_IN_FORCE, {
        "resident_id": resident_id, "client_id": client_id, **in_force_values()})
    return set(scopes or ())


def in_force_sql(resident_id, client_id):
    """``scopes_in_force`` as a scalar subquery (NULL when no consent is in force), for
    columns of an enclosing query: ``idp.oauth.tokens`` reads it with every token. The
    enclosing statement is run with ``in_force_values()``."""
    return (select(Consent.scopes).where(*_in_force(resident_id, client_id, NOW, DEFAULT_TERMS))
            .scalar_subquery())


def covered(scopes, consented: set[str]) -> list[str]:
    """The scopes (in their order) that consented items cover. The one place that maps a
    scope onto consent items: codes, issued tokens and every use of a token go through it."""
    return [s for s in scopes if s in consented]


def consented_for(token: Token | AuthorizationCode) -> set[str] | None:
    """The items of the consent in force now behind a token or a code: None for a token
    without a resident (client_credentials: no consent is involved), an empty set once
    the consent was withdrawn, has expired or was given under other terms."""
    if token.resident_id is None:
        return None
    if "consent_scopes" in vars(token):  # read with it (idp.oauth.tokens, idp.oauth.grants)
        return set(token.consent_scopes or ())
    return scopes_in_force(token.resident_id, token.client_id)


def scopes_in_force_for(token: Token) -> list[str]:
    """The token's scopes that the consent in force now still covers.

    A consent may narrow, be withdrawn or expire after a token was issued; what the
    token releases (UserInfo, verified claims, touch events) and what introspection
    reports follow the consent at the moment of use, not at issuance, and so does a
    refresh (RFC 6749 §6: never more than the original grant). Empty for a resident
    token whose consent is no longer in force; a token without a resident keeps its
    scopes (no resident, no consent).
    """
    scopes = token.scope.split()
    consented = consented_for(token)
    if consented is None:
        return scopes
    return covered(scopes, consented)


def grant(resident: Resident, client: Client, requested: list[str],
          granted: list[str]) -> Consent:
    """Record the resident's decision: ``granted`` of ``requested`` (required ones always).

    One row per (resident, client). Parallel submissions race on the unique
    constraint; the loser updates the winner's row instead of adding one.
    """
    unknown = set(granted) - set(requested)
    if unknown:
        raise ConsentError(f"cannot grant items that were not requested: {sorted(unknown)}")
    chosen = set(granted) | (set(requested) & REQUIRED_SCOPES)
    # The parts of an item (the verified claim names asked for) go with its box.
    scopes = [s for s in requested if item_of(s) in chosen]
    declined = [s for s in requested if item_of(s) not in chosen]
    now = utcnow()
    settings = config.settings()
    terms_version = terms.current_version()
    values = dict(
        scopes=scopes,
        declined_scopes=declined,
        terms_version=terms_version,
        granted_at=now,
        expires_at=now + dt.timedelta(days=settings.consent_ttl_days),
        withdrawn_at=None,
    )
    consent = find(resident.id, client.id)
    created = False
    if consent is None:
        try:
            with db.session.begin_nested():
                consent = Consent(resident_id=resident.id, client_id=client.id, **values)
                db.session.add(consent)
            created = True
        except IntegrityError:
            consent = find(resident.id, client.id)
    previous = None
    if not created:
        if consent.withdrawn_at is None:
            previous = list(consent.scopes)
        for key, value in values.items():
            setattr(consent, key, value)
    db.session.flush()
    tag = AuditTag.CONSENT_CHANGE if previous is not None else AuditTag.CONSENT_GRANT
    record(tag, resident_id=resident.id, client_id=client.id, company_id=client.company_id,
           scopes=scopes, declined=declined, terms_version=terms_version,
           **({"previous": previous} if previous is not None else {}))
    receipts.issue(resident, consent, receipts.GIVEN)
    return consent


def record_denial(resident: Resident, client: Client, requested: list[str]) -> None:
    record(AuditTag.CONSENT_DENY, resident_id=resident.id, client_id=client.id,
           company_id=client.company_id, scopes=requested)


def withdraw(resident_id: str, client_id: str) -> Consent:
    """Withdraw consent for one service: its tokens for this resident die at once,
    and so do codes issued but not yet redeemed (a code carries the consent it was
    issued under, so it must not outlive it; the same for device codes a kiosk has
    not collected yet), through ``idp.access.service.revoke_grants``. A receipt
    records the withdrawal."""
    plausible = isinstance(client_id, str) and 0 < len(client_id) <= 40 \
        and client_id.isascii() and client_id.isprintable()
    consent = find(resident_id, client_id) if plausible else None
    if consent is None or consent.withdrawn_at is not None:
        raise ConsentError("no consent in force for this service")
    consent.withdrawn_at = utcnow()
    # The service's sessions for this resident end too: it is told by a logout
    # token when it registered a back-channel logout URI.
    access.revoke_grants(resident=resident_id, client=consent.client, reason="consent_withdrawn")
    record(AuditTag.CONSENT_CHANGE, resident_id=resident_id, client_id=client_id,
           company_id=consent.client.company_id, withdrawn=True)
    receipts.issue(db.session.get(Resident, resident_id), consent, receipts.WITHDRAWN)
    return consent


def withdraw_item(resident_id: str, client_id: str, item: str) -> Consent:
    """Stop sharing one item (``birth_year``, with its parts) with one service and keep
    the rest: the item moves to the declined ones (not asked again until the consent
    is asked anew), what the service may release follows at once
    (``scopes_in_force_for``), and its grants carrying the item are cut off through
    ``idp.access.service.narrow_grants`` — tokens revoked, unredeemed codes expired,
    the service told by logout token and session-revoked, and by consent-withdrawn
    naming the item (``reason`` ``consent_narrowed``). Audited; a receipt records the
    consent as it now stands. The last optional item cannot go alone: that is a
    withdrawal (``withdraw``)."""
    consent = None
    if isinstance(client_id, str) and 0 < len(client_id) <= 40 and client_id.isascii() \
            and client_id.isprintable():
        consent = find(resident_id, client_id)
    if consent is None or consent.withdrawn_at is not None:
        raise ConsentError("no consent in force for this service")
    stopped = [s for s in consent.scopes if item_of(s) == item]
    if not isinstance(item, str) or item in REQUIRED_SCOPES or not stopped:
        raise ConsentError("this item is not shared with this service")
    kept = [s for s in consent.scopes if item_of(s) != item]
    if not set(map(item_of, kept)) - REQUIRED_SCOPES:
        raise ConsentError("the last item cannot be stopped alone; withdraw the consent")
    consent.scopes = kept
    consent.declined_scopes = [*consent.declined_scopes,
                               *(s for s in stopped if s not in consent.declined_scopes)]
    revoked = access.narrow_grants(consent.client, resident=resident_id, scopes=set(stopped),
                                   reason="consent_narrowed")
    security_events.queue(client_id, resident_id, security_events.CONSENT_WITHDRAWN,
                          {"scopes": stopped}, reason="consent_narrowed")
    record(AuditTag.CONSENT_CHANGE, resident_id=resident_id, client_id=client_id,
           company_id=consent.client.company_id, scopes=kept, withdrawn_items=stopped,
           tokens_revoked=revoked)
    receipts.issue(db.session.get(Resident, resident_id), consent, receipts.NARROWED)
    return consent


# ---- consent's part of privacy operations (idp.privacy) -------------------------------

def export_resident(resident_id: str, names) -> dict:
    """The resident's part of a data export: every consent, as it stands, and every
    receipt. ``names.service`` names a client for people."""
    return {
        "consents": [
            {**names.service(c.client_id), "scopes": list(c.scopes),
             "declined_scopes": list(c.declined_scopes), "terms_version": c.terms_version,
             "granted_at": c.granted_at, "expires_at": c.expires_at,
             "withdrawn_at": c.withdrawn_at}
            for c in db.session.scalars(select(Consent).where(Consent.resident_id == resident_id)
                                        .order_by(Consent.granted_at))
        ],
        "consent_receipts": [r.document for r in receipts.for_resident(resident_id)],
    }


def forget_resident(resident_id: str) -> dict[str, int]:
    """Consent's part of an account deletion: every consent and receipt goes; returns
    how many consents were in force."""
    in_force = db.session.scalar(
        select(func.count()).select_from(Consent)
        .where(Consent.resident_id == resident_id, Consent.withdrawn_at.is_(None))) or 0
    delete_where(db.session, ConsentReceipt, ConsentReceipt.resident_id == resident_id)
    delete_where(db.session, Consent, Consent.resident_id == resident_id)
    return {"consents_withdrawn": in_force}
