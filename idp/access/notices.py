"""Who must be told that a session ended (OIDC Back-Channel Logout 1.0), and queueing it.

Every path that ends sessions or grants goes through ``idp.access.service``
(``end_sessions``, ``revoke_grants``), which asks this module who must be told:

- ``notices_for_session``: every client a browser session signed in to (the
  resident signs out, ``/logout``; a password change or reset, declining the
  terms, deletion, an admin ending the resident's sessions);
- ``notices_for_grants``: every live session of a client, of a resident, or
  of a resident at a client (live browser session or live tokens): the
  client or its company is cut off, consent is withdrawn, all of a
  resident's grants are revoked;
- ``notices_for_tokens``: the sessions behind some tokens (a client's
  settings were narrowed and the tokens carrying a removed scope die).

``queue`` writes one outbox message per notice in the caller's transaction
(``idp.outbox``): nothing is sent for a change that rolls back, and nothing is
sent while a transaction is open. The message holds the claims (``aud``,
``sub``, ``sid``); the protocol side (``idp.oauth.backchannel``) signs a fresh
logout token from them at each delivery attempt.

The same notices say which clients get a CAEP session-revoked security event
(``idp.access.security_events.for_notices``): a client is found here when it
registered a back-channel logout URI or an event receiver URI (``reachable``),
and each side queues only for the clients that registered its URI.

Clients are known here only by id: a client row is reached through the
``Token.client`` relationship's mapper (``client_by_id``), and read duck-typed
(``is_active``, ``company_id``, ``backchannel_logout_uri``, ``event_receiver_uri``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select

from idp.access.models import AuthorizationCode
from idp.access.models import BrowserSession
from idp.access.models import Token
from idp.access.subjects import per_company_id
from idp.access.subjects import subject_for
from idp.db import utcnow
from idp.extensions import db
from idp.outbox import service as outbox

KIND = "backchannel_logout"


def client_by_id(client_id: str):
    """The client row with this id, or None: the class is the one ``Token.client``
    names, so this floor needs no import of ``idp.clients``."""
    return db.session.get(Token.client.property.mapper.class_, client_id)


def reachable(client) -> bool:
    """Whether the client registered somewhere to be told that sessions end."""
    return bool(client.backchannel_logout_uri or client.event_receiver_uri)


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

def notices_for_grants(reason: str, *, client=None,
                       resident_id: str | None = None) -> list[Notice]:
    """Every session still alive here — a live browser session, or live tokens — of
    ``client``, of the resident, or of the resident at ``client``, at clients with a
    back-channel logout URI or an event receiver (``reachable``). Call it before
    the tokens are revoked.

    A client-wide cut-off tells the client even if its company was suspended
    a moment ago in the same change; a resident's cut-off tells only clients
    that may act now (a suspended company was told when it was suspended).
    """
    if client is not None and not reachable(client):
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
        target = client if client is not None else client_by_id(client_id)
        if target is None or not reachable(target):
            continue
        if client is None and not target.is_active:
            continue
        notices.append(Notice(client_id, rid, session_id, reason))
    return sorted(notices, key=lambda n: (n.client_id, n.resident_id, n.session_id or 0))


def notices_for_session(row: BrowserSession, reason: str) -> list[Notice]:
    """Every connected client the browser session signed in to (a redeemed code), that
    is ``reachable``."""
    client_ids = db.session.scalars(
        select(AuthorizationCode.client_id)
        .where(AuthorizationCode.session_id == row.id, AuthorizationCode.used_at.is_not(None))
        .distinct()
    ).all()
    notices = []
    for client_id in sorted(client_ids):
        client = client_by_id(client_id)
        if client is not None and client.is_active and reachable(client):
            notices.append(Notice(client.id, row.resident_id, row.id, reason))
    return notices


def notices_for_tokens(tokens, reason: str) -> list[Notice]:
    """The sessions behind these resident tokens (the browser session a token's code
    was issued in, else the grant itself), at connected ``reachable`` clients: some
    grants of a client die while the client stays connected (an edit took a scope
    away). Call it before the tokens are revoked."""
    code_ids = {t.code_id for t in tokens if t.code_id is not None}
    sessions = dict(db.session.execute(
        select(AuthorizationCode.id, AuthorizationCode.session_id)
        .where(AuthorizationCode.id.in_(code_ids))).all()) if code_ids else {}
    notices = set()
    for token in tokens:
        if token.resident_id is None:
            continue
        client = client_by_id(token.client_id)
        if client is not None and client.is_active and reachable(client):
            notices.add(Notice(token.client_id, token.resident_id,
                               sessions.get(token.code_id), reason))
    return sorted(notices, key=lambda n: (n.client_id, n.resident_id, n.session_id or 0))


# ---- queue with the change; delivered by idp.outbox after the commit ----------

def queue(notices: list[Notice]) -> int:
    """One outbox message per notice, in the caller's transaction; returns how many."""
    queued = 0
    for notice in dict.fromkeys(notices):
        client = client_by_id(notice.client_id)
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
