"""OIDC Back-Channel Logout 1.0: telling clients, server to server, that a session ended.

A client that registered a ``backchannel_logout_uri`` receives a logout token
(§2.4) for each of its sessions that ends here. Who must be told, and the
outbox message for each, is decided where access ends (``idp.access.notices``,
called by ``idp.access.service``); this module is the delivery side: it signs
the logout token and registers the outbox kind.

The logout token is a JWT signed with our ID token keys (the client's
algorithm), ``typ: logout+jwt`` (§2.4), with ``iss``, ``aud``, ``iat``, ``exp``,
``jti``, ``events`` and the pairwise ``sub``; ``sid`` too when the session is a
browser session, the same value the client found in its ID token (§2.1).
It never carries a ``nonce`` (§2.4).

The outbox message holds the claims (``aud``, ``sub``, ``sid``); each
delivery attempt signs a fresh token from them, since a token lives two
minutes and retries come later. Each attempt is a POST with a
timeout and without following redirects (§2.5); its outcome — delivered, or
failed with the HTTP status or the kind of error — is audited, never the token.
"""

from __future__ import annotations

import time

from flask import Flask
from joserfc import jwt

from idp import config
from idp import secrets
from idp.access.notices import KIND
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.extensions import db
from idp.keys import service as keys
from idp.outbox import service as outbox
from idp.outbox.models import OutboxMessage

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TTL = 120




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
