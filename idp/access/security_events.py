"""Security events for member companies: who is told what, queued with the change.

A client that registered an ``event_receiver_uri`` is pushed a signed Security
Event Token (RFC 8417, delivered per RFC 8935 by ``idp.oauth.security_events``)
when something it holds about a resident stops being allowed: a consent is
withdrawn, a session or grant is revoked, the account is deleted, a data link
ends. Event types are the OpenID Shared Signals Framework's where one fits
(CAEP, RISC) and ours, under ``urn:machi-id:secevent:``, where none does
(docs/security-events.md).

This module decides the message and queues it in the caller's transaction
(``idp.outbox``): nothing is sent for a change that rolls back. The message
holds what the SET will say — ``aud`` (the client), the subject as the
company knows it (the pairwise ``sub``, RFC 9493 ``iss_sub``), the event and
its members, a ``jti`` kept across retries — and never the resident's id or
any identifier another company sees. The pairwise ``sub`` is read now: an
account deletion removes it right after (``forget_resident``).

Who calls what: ``idp.access.service`` for the cut-offs it performs
(``for_notices``: CAEP session-revoked per client and resident; account
deletion: RISC account-purged to every company that knew the resident,
``queue_for_resident``); ``idp.consent.service`` for a withdrawn consent;
the data exchange for a data link that ended or registered data disputed
(``queue``).

Clients are known here only by id and read duck-typed (``is_active``,
``company_id``, ``event_receiver_uri``), like ``idp.access.notices``.
"""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from idp import config
from idp import secrets
from idp.access.models import PairwiseSubject
from idp.access.models import Token
from idp.access.notices import Notice
from idp.access.notices import client_by_id
from idp.access.subjects import existing_subject
from idp.access.subjects import subject_for
from idp.extensions import db
from idp.outbox import service as outbox

KIND = "security_event"

# OpenID Continuous Access Evaluation Profile 1.0 §3.1.
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
# OpenID RISC Profile 1.0 §2.2 and §2.3.
ACCOUNT_PURGED = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
# Ours (docs/security-events.md): what the SSF event types have no word for.
CONSENT_WITHDRAWN = "urn:machi-id:secevent:consent-withdrawn"
DATA_LINK_ENDED = "urn:machi-id:secevent:data-link-ended"
REGISTERED_DATA_DISPUTED = "urn:machi-id:secevent:registered-data-disputed"

CAEP = (SESSION_REVOKED,)
RISC = (ACCOUNT_PURGED, ACCOUNT_DISABLED)
OURS = (CONSENT_WITHDRAWN, DATA_LINK_ENDED, REGISTERED_DATA_DISPUTED)
EVENT_TYPES = CAEP + RISC + OURS

# CAEP §2 ``initiating_entity``: who caused the event, by the reason of the
# cut-off (idp.access.service's table). Anything else is "system".
INITIATED_BY_USER = {"logout", "password_change", "password_reset", "terms_declined",
                     "consent_withdrawn", "consent_narrowed", "account_deleted"}
INITIATED_BY_ADMIN = {"admin", "client_revoked", "client_secret_rotated", "client_narrowed",
                      "company_suspended", "company_revoked"}
# CAEP §2 ``reason_admin``: a short English text for the company's operators.
REASONS = {
    "logout": "The resident signed out.",
    "password_change": "The resident changed the password.",
    "password_reset": "The resident reset the password.",
    "terms_declined": "The resident declined the consortium's new terms.",
    "consent_withdrawn": "The resident withdrew consent for this service.",
    "consent_narrowed": "The resident stopped sharing some items with this service.",
    "account_deleted": "The resident deleted the consortium ID.",
    "admin": "A consortium administrator ended the resident's sessions.",
    "client_revoked": "The consortium revoked this client.",
    "client_secret_rotated": "The client secret was replaced and its grants revoked.",
    "client_narrowed": "The client's settings were narrowed.",
    "company_suspended": "The consortium suspended the company.",
    "company_revoked": "The consortium ended the company's membership.",
}


def initiating_entity(reason: str) -> str:
    if reason in INITIATED_BY_USER:
        return "user"
    if reason in INITIATED_BY_ADMIN:
        return "admin"
    return "system"


def event_members(event_type: str, reason: str, now: int, detail: dict | None) -> dict:
    """The members of the event object (RFC 8417 §2.2 ``events`` value)."""
    detail = dict(detail or {})
    if event_type in CAEP:
        return {"event_timestamp": now, "initiating_entity": initiating_entity(reason),
                "reason_admin": {"en": REASONS.get(reason, reason)}, **detail}
    if event_type in RISC:
        # RISC 1.0 defines no timestamp; account-disabled may say why (``reason``).
        return detail
    return {"event_timestamp": now, "reason": reason, **detail}


def _client_class():
    return Token.client.property.mapper.class_


def queue(client_id: str, resident_id: str, event_type: str, detail: dict | None = None, *,
          reason: str) -> bool:
    """Queue one security event about the resident for the client; True if queued.

    Nothing happens (False) when the client does not exist, is not active, or
    registered no ``event_receiver_uri``, or when an identical event still
    waits to be sent. ``detail`` adds members to the event (JSON values,
    nothing that names the resident; ``ValueError`` otherwise); ``reason`` is
    a short code (``consent_withdrawn``) kept in the audit record and, for our
    own event types, in the event. The subject is the resident's pairwise
    ``sub`` at the client's company, read (or created) now.
    """
    client = client_by_id(client_id)
    if client is None or not client.is_active or not client.event_receiver_uri:
        return False
    return _queue(client, resident_id, event_type, detail, reason=reason,
                  sub=subject_for(resident_id, client.company_id))


def _queue(client, resident_id: str, event_type: str, detail: dict | None, *, reason: str,
           sub: str) -> bool:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown security event type: {event_type}")
    if detail is not None and resident_id in json.dumps(detail, default=str):
        raise ValueError("a security event must not carry the resident's id")
    now = int(time.time())
    subject = {"format": "iss_sub", "iss": config.settings().issuer, "sub": sub}
    members = event_members(event_type, reason, now, detail)
    payload = {"aud": client.id, "sub_id": subject, "jti": secrets.token(16), "iat": now,
               "events": {event_type: members}}
    message = outbox.enqueue(
        KIND, client.event_receiver_uri, payload, resident_id=resident_id,
        client_id=client.id, company_id=client.company_id,
        audit={"reason": reason, "event": event_type},
        # The same event about the same subject, still waiting, is sent once (a
        # change that ends the sessions and revokes the grants says it once).
        same_as=[client.id, sub, event_type, reason, detail])
    return message is not None


def queue_for_resident(resident_id: str, event_type: str, detail: dict | None = None, *,
                       reason: str) -> int:
    """Tell every company that holds something about the resident: each active
    client with a receiver, of every company that was given a pairwise ``sub``
    for the resident (a company never given one knows nothing to act on).
    Returns how many events were queued. Call it before the subjects go."""
    subjects = dict(select_subjects(resident_id))
    if not subjects:
        return 0
    cls = _client_class()
    clients = db.session.scalars(
        select(cls).where(cls.company_id.in_(list(subjects)),
                          cls.event_receiver_uri.is_not(None), cls.revoked_at.is_(None))
        .order_by(cls.id))
    queued = 0
    for client in clients:
        if client.is_active:
            queued += _queue(client, resident_id, event_type, detail, reason=reason,
                             sub=subjects[client.company_id])
    return queued


def select_subjects(resident_id: str) -> list[tuple[str, str]]:
    """(company_id, sub) for every company given a pairwise ``sub`` for the resident."""
    rows = db.session.execute(select(PairwiseSubject.company_id, PairwiseSubject.sub)
                              .where(PairwiseSubject.resident_id == resident_id))
    return [(company_id, sub) for company_id, sub in rows]


def for_notices(notices: list[Notice]) -> int:
    """CAEP session-revoked for the sessions a cut-off ends (the notices
    ``idp.access.notices`` found, which decided which clients may be told): one
    event per client and resident, at clients with a receiver. Returns how many."""
    queued = 0
    for client_id, resident_id, reason in dict.fromkeys(
            (n.client_id, n.resident_id, n.reason) for n in notices):
        client = client_by_id(client_id)
        if client is None or not client.event_receiver_uri:
            continue
        sub = existing_subject(resident_id, client.company_id)
        if sub is None:
            continue
        queued += _queue(client, resident_id, SESSION_REVOKED, None, reason=reason, sub=sub)
    return queued
