"""OIDC Back-Channel Logout 1.0: telling clients, server to server, that a session ended.

A client that registered a ``backchannel_logout_uri`` receives a logout token
(§2.4) for each of its sessions that ends here. Every path that ends sessions
or grants goes through ``idp.oauth.access`` (``end_sessions``,
``revoke_grants``), which asks this module who must be told:

- ``notices_for_session``: every client a browser session signed in to (the
  resident signs out, ``/logout``; a password change or reset, declining the
  terms, deletion, an admin ending the resident's sessions);
- ``notices_for_grants``: every live session of a client, of a resident, or
  of a resident at a client (live browser session or live tokens): the
  client or its company is cut off, consent is withdrawn, all of a
  resident's grants are revoked.

The logout token is a JWT signed with our ID token keys (the client's
algorithm), ``typ: logout+jwt`` (§2.4), with ``iss``, ``aud``, ``iat``, ``exp``,
``jti``, ``events`` and the pairwise ``sub``; ``sid`` too when the session is a
browser session, the same value the client found in its ID token (§2.1).
It never carries a ``nonce`` (§2.4).

``queue`` writes one outbox message per notice in the caller's transaction
(``idp.outbox``): nothing is sent for a change that rolls back, and nothing is
sent while a transaction is open. The message holds the claims (``aud``,
``sub``, ``sid``); each delivery attempt signs a fresh token from them, since a
token lives two minutes and retries come later. Each attempt is a POST with a
timeout and without following redirects (§2.5); its outcome — delivered, or
failed with the HTTP status or the kind of error — is audited, never the token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import Flask
from joserfc import jwt
from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select

from idp import config
from idp import secrets
from idp.accounts.models import BrowserSession
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.db import utcnow
from idp.extensions import db
from idp.keys import service as keys
from idp.oauth.models import AuthorizationCode
from idp.oauth.models import Token
from idp.oauth.subjects import per_company_id
from idp.oauth.subjects import subject_for
from idp.outbox import service as outbox
from idp.outbox.models import OutboxMessage

EVENT = "http://schemas.openid.net/event/backchannel-logout"
KIND = "backchannel_logout"
LOGOUT_TOKEN_TTL = 120


@dataclass(frozen=True)
class Notice:
    """One session of one client to be logged out."""

    client_id: str
    resident_id: str
    session_id: int | None  # browser_sessions.id; None for device-flow grants
    reason: str


def sid_for(session_id: int, company_id: str) -> str:
    """The ``sid`` a company sees for a browser session (ID token and logout token).

    Derived with the server secret, and different per company like the
    pairwise ``sub``: two companies cannot tell they share a session, and the
    row number of the session is not revealed (``subjects.per_company_id``).
    """
    return per_company_id(company_id, "sid", session_id)


# ---- who must be told --------------------------------------------------------

def notices_for_grants(reason: str, *, client: Client | None = None,
                       resident_id: str | None = None) -> list[Notice]:
    """Every session still alive here — a live browser session, or live tokens — of
    ``client``, of the resident, or of the resident at ``client``, at clients with a
    back-channel logout URI. Call it before the tokens are revoked.

    A client-wide cut-off tells the client even if its company was suspended
    a moment ago in the same change; a resident's cut-off tells only clients
    that may act now (a suspended company was told when it was suspended).
    """
    if client is not None and not client.backchannel_logout_uri:
        return []
    now = utcnow()
    live_token = and_(
        Token.revoked_at.is_(None),
        or_(Token.access_expires_at > now,
            and_(Token.refresh_token_digest.is_not(None), Token.refresh_used_at.is_(None),
                 Token.refresh_expires_at > now)))
    code_filters = [AuthorizationCode.used_at.is_not(None)]
    token_filters = [Token.code_id.is_(None), Token.resident_id.is_not(None), live_token]
    if client is not None:
        code_filters.append(AuthorizationCode.client_id == client.id)
        token_filters.append(Token.client_id == client.id)
    if resident_id is not None:
        code_filters.append(AuthorizationCode.resident_id == resident_id)
        token_filters.append(Token.resident_id == resident_id)
    from_codes = db.session.execute(
        select(AuthorizationCode.client_id, AuthorizationCode.resident_id,
               AuthorizationCode.session_id)
        .outerjoin(BrowserSession, BrowserSession.id == AuthorizationCode.session_id)
        .outerjoin(Token, and_(Token.code_id == AuthorizationCode.id, live_token))
        .where(*code_filters,
               or_(and_(BrowserSession.ended_at.is_(None), BrowserSession.expires_at > now),
                   Token.id.is_not(None)))
        .distinct()
    ).all()
    without_session = db.session.execute(
        select(Token.client_id, Token.resident_id).where(*token_filters).distinct()
    ).all()
    found = {(client_id, rid, session_id) for client_id, rid, session_id in from_codes}
    found |= {(client_id, rid, None) for client_id, rid in without_session}
    notices = []
    for client_id, rid, session_id in found:
        target = client if client is not None else db.session.get(Client, client_id)
        if target is None or not target.backchannel_logout_uri:
            continue
        if client is None and not target.is_active:
            continue
        notices.append(Notice(client_id, rid, session_id, reason))
    return sorted(notices, key=lambda n: (n.client_id, n.resident_id, n.session_id or 0))


def notices_for_session(row: BrowserSession, reason: str) -> list[Notice]:
    """Every connected client the browser session signed in to (a redeemed code)."""
    client_ids = db.session.scalars(
        select(AuthorizationCode.client_id)
        .where(AuthorizationCode.session_id == row.id, AuthorizationCode.used_at.is_not(None))
        .distinct()
    ).all()
    notices = []
    for client_id in sorted(client_ids):
        client = db.session.get(Client, client_id)
        if client is not None and client.is_active and client.backchannel_logout_uri:
            notices.append(Notice(client.id, row.resident_id, row.id, reason))
    return notices


# ---- queue with the change; delivered by idp.outbox after the commit ----------

def queue(notices: list[Notice]) -> int:
    """One outbox message per notice, in the caller's transaction; returns how many."""
    queued = 0
    for notice in dict.fromkeys(notices):
        client = db.session.get(Client, notice.client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        claims = {"aud": client.id, "sub": subject_for(notice.resident_id, client.company_id)}
        if notice.session_id is not None:
            claims["sid"] = sid_for(notice.session_id, client.company_id)
        message = outbox.enqueue(
            KIND, client.backchannel_logout_uri, claims, resident_id=notice.resident_id,
            client_id=client.id, company_id=client.company_id,
            audit={"reason": notice.reason, "session": notice.session_id is not None})
        queued += message is not None
    return queued


def logout_token(claims: dict, client: Client) -> str:
    """A freshly signed logout token for the stored claims (aud, sub, sid)."""
    alg = client.id_token_signed_response_alg or config.settings().id_token_default_alg
    key = keys.signing_key(alg)
    now = int(time.time())
    claims = {
        "iss": config.settings().issuer,
        "aud": client.id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": secrets.token(16),
        "events": {EVENT: {}},
        "sub": claims["sub"],
        **({"sid": claims["sid"]} if "sid" in claims else {}),
    }
    header = {"alg": alg, "kid": key.kid, "typ": "logout+jwt"}
    return jwt.encode(header, claims, keys.private_key(key), [alg])


def _render(message: OutboxMessage) -> dict[str, str]:
    client = db.session.get(Client, message.client_id)
    if client is None:
        raise LookupError(f"client {message.client_id} no longer exists")
    return {"logout_token": logout_token(message.payload, client)}


def init_app(app: Flask) -> None:
    outbox.register(app, outbox.Kind(
        name=KIND, render=_render, audit_tag=AuditTag.BACKCHANNEL_LOGOUT,
        timeout=lambda: config.settings().backchannel_logout_timeout))
