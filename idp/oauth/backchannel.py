"""OIDC Back-Channel Logout 1.0: telling clients, server to server, that a session ended.

A client that registered a ``backchannel_logout_uri`` receives a logout token
(§2.4) for each of its sessions that ends here:

- the resident signs out, or a relying party asks for it (``/logout``,
  ``idp.oauth.oidc.EndSessionEndpoint``): every client the browser session
  signed in to;
- the consortium revokes the client or suspends or revokes its company
  (``idp.clients.service``): every session of that client that still has a
  live browser session or live tokens.

The logout token is a JWT signed with our ID token keys (the client's
algorithm), ``typ: logout+jwt`` (§2.4), with ``iss``, ``aud``, ``iat``, ``exp``,
``jti``, ``events`` and the pairwise ``sub``; ``sid`` too when the session is a
browser session, the same value the client found in its ID token (§2.1).
It never carries a ``nonce`` (§2.4).

Notices are queued with the change and sent only after it commits (a rolled
back revocation logs nobody out). Each delivery is a POST with a timeout and
without following redirects (§2.5); the outcome — delivered, or failed with
the HTTP status or the kind of error — is written to the audit trail, never
the token.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from flask import Flask
from flask import current_app
from joserfc import jwt
from sqlalchemy import and_
from sqlalchemy import event as sa_event
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import secrets
from idp.accounts.models import BrowserSession
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.db import utcnow
from idp.extensions import db
from idp.keys import service as keys
from idp.oauth.models import AuthorizationCode
from idp.oauth.models import Token
from idp.oauth.subjects import per_company_id
from idp.oauth.subjects import subject_for

log = logging.getLogger(__name__)

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TTL = 120
MAX_PARALLEL = 8
QUEUED = "idp.backchannel.queued"
READY = "idp.backchannel.ready"


@dataclass(frozen=True)
class Notice:
    """One session of one client to be logged out."""

    client_id: str
    resident_id: str
    session_id: int | None  # browser_sessions.id; None for device-flow grants
    reason: str


def _settings():
    return current_app.extensions["idp.settings"]


def sid_for(session_id: int, company_id: str) -> str:
    """The ``sid`` a company sees for a browser session (ID token and logout token).

    Derived with the server secret, and different per company like the
    pairwise ``sub``: two companies cannot tell they share a session, and the
    row number of the session is not revealed (``subjects.per_company_id``).
    """
    return per_company_id(company_id, "sid", session_id)


# ---- who must be told --------------------------------------------------------

def notices_for_client(client: Client, reason: str) -> list[Notice]:
    """Every session of ``client`` that is still alive here: a live browser
    session, or live tokens. Call it before the tokens are revoked."""
    if not client.backchannel_logout_uri:
        return []
    now = utcnow()
    live_token = and_(
        Token.revoked_at.is_(None),
        or_(Token.access_expires_at > now,
            and_(Token.refresh_token_digest.is_not(None), Token.refresh_used_at.is_(None),
                 Token.refresh_expires_at > now)))
    from_codes = db.session.execute(
        select(AuthorizationCode.resident_id, AuthorizationCode.session_id)
        .outerjoin(BrowserSession, BrowserSession.id == AuthorizationCode.session_id)
        .outerjoin(Token, and_(Token.code_id == AuthorizationCode.id, live_token))
        .where(AuthorizationCode.client_id == client.id,
               AuthorizationCode.used_at.is_not(None),
               or_(and_(BrowserSession.ended_at.is_(None), BrowserSession.expires_at > now),
                   Token.id.is_not(None)))
        .distinct()
    ).all()
    without_session = db.session.scalars(
        select(Token.resident_id)
        .where(Token.client_id == client.id, Token.code_id.is_(None),
               Token.resident_id.is_not(None), live_token)
        .distinct()
    ).all()
    notices = {Notice(client.id, resident_id, session_id, reason)
               for resident_id, session_id in from_codes}
    notices |= {Notice(client.id, resident_id, None, reason) for resident_id in without_session}
    return sorted(notices, key=lambda n: (n.resident_id, n.session_id or 0))


def notices_for_session(row: BrowserSession, reason: str = "logout") -> list[Notice]:
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


# ---- queue until the commit ----------------------------------------------------

def queue(notices: list[Notice]) -> None:
    if notices:
        db.session().info.setdefault(QUEUED, []).extend(notices)


@sa_event.listens_for(Session, "after_commit")
def _ready(session: Session) -> None:
    if session.get_nested_transaction() is None and session.info.get(QUEUED):
        session.info.setdefault(READY, []).extend(session.info.pop(QUEUED))


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, previous) -> None:
    if previous.parent is None:
        session.info.pop(QUEUED, None)


# ---- delivery ------------------------------------------------------------------

def logout_token(notice: Notice, client: Client) -> str:
    alg = client.id_token_signed_response_alg or _settings().id_token_default_alg
    key = keys.signing_key(alg)
    now = int(time.time())
    claims = {
        "iss": _settings().issuer,
        "aud": client.id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": secrets.token(16),
        "events": {EVENT: {}},
        "sub": subject_for(notice.resident_id, client.company_id),
    }
    if notice.session_id is not None:
        claims["sid"] = sid_for(notice.session_id, client.company_id)
    header = {"alg": alg, "kid": key.kid, "typ": "logout+jwt"}
    return jwt.encode(header, claims, keys.private_key(key), [alg])


def _post(uri: str, token: str, timeout: int) -> dict:
    try:
        response = requests.post(uri, data={"logout_token": token}, timeout=timeout,
                                 allow_redirects=False,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    except requests.Timeout:
        return {"result": "failed", "error": "timeout"}
    except requests.RequestException as exc:
        return {"result": "failed", "error": type(exc).__name__}
    # §2.8: 200 OK on success (204 is accepted as well).
    if response.status_code in (200, 204):
        return {"result": "delivered", "status": response.status_code}
    return {"result": "failed", "status": response.status_code}


def deliver_ready() -> list[dict]:
    """Send every notice whose change has committed; audit each outcome.

    The caller commits afterwards (the audit records, and a signing key made
    on demand). Returns one dict per notice: client, result, status/error.
    """
    notices = db.session().info.pop(READY, [])
    if not notices:
        return []
    timeout = _settings().backchannel_logout_timeout
    jobs = []
    for notice in dict.fromkeys(notices):
        client = db.session.get(Client, notice.client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        jobs.append((notice, client, client.backchannel_logout_uri, logout_token(notice, client)))
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(jobs))) as pool:
        outcomes = list(pool.map(lambda job: _post(job[2], job[3], timeout), jobs))
    results = []
    for (notice, client, _uri, _token), outcome in zip(jobs, outcomes, strict=True):
        record(AuditTag.BACKCHANNEL_LOGOUT, resident_id=notice.resident_id,
               client_id=client.id, company_id=client.company_id, reason=notice.reason,
               session=notice.session_id is not None, **outcome)
        results.append({"client_id": client.id, **outcome})
    return results


def init_app(app: Flask) -> None:
    @app.after_request
    def deliver_after_commit(response):
        """Requests that committed a logout or a cut-off deliver its notices now."""
        if db.session().info.get(READY):
            try:
                deliver_ready()
                db.session.commit()
            except Exception:  # a failed delivery must not fail the answer already made
                log.exception("back-channel logout delivery failed")
                db.session.rollback()
        return response
