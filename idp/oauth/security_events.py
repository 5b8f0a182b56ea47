"""Security Event Tokens (RFC 8417) pushed to member companies (RFC 8935), and the
transmitter metadata of the OpenID Shared Signals Framework 1.0 (§7.1).

Who is told what is decided where access ends (``idp.access.security_events``);
this module is the delivery side: it signs the SET and registers the outbox kind.

The SET (RFC 8417 §2.2, profiled by SSF 1.0 §4): ``iss``, ``iat``, ``jti``,
``aud`` (the client), ``events`` with exactly one event, and the subject as the
top-level ``sub_id`` (SSF §3, RFC 9493 ``iss_sub`` with the company's pairwise
``sub``). No ``sub`` claim, no ``exp`` (a SET states a past fact, RFC 8417
§2.2), no ``txn``: one value across the SETs of one change would let two
companies learn they hold the same resident. The header is ``typ:
secevent+jwt`` (RFC 8417 §2.3), signed with our ID token keys (the client's
algorithm), verifiable with ``jwks_uri``.

The claims are fixed when the event is queued (``jti`` and ``iat`` included),
and the SET is signed at each delivery attempt from them: a retry is the same
SET (the receiver recognises it by ``jti``), signed with the key in force.

Delivery (RFC 8935 §2): a POST of the SET as the body, ``Content-Type:
application/secevent+jwt``, ``Accept: application/json``, without following
redirects. 202 (or any 2xx) is delivered. 400 is the receiver refusing this
SET (§2.3: ``{"err": …, "description": …}``): sending it again cannot help, so
it becomes a dead letter at once, its ``err`` code audited. Anything else — a
timeout, 5xx, 401/403/404 while a receiver is being fixed — is retried with the
outbox's backoff. Each attempt is audited (``security_event:delivery``), never
the SET.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from joserfc import jwt

from idp import config
from idp.access.security_events import KIND
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.config import Settings
from idp.extensions import db
from idp.keys import service as keys
from idp.outbox import service as outbox
from idp.outbox.models import OutboxMessage

MEDIA_TYPE = "application/secevent+jwt"
PUSH_DELIVERY = "urn:ietf:rfc:8935"  # SSF 1.0 §6.1.1
SPEC_VERSION = "1_0"  # SSF 1.0 §7.1: the final specification


def security_event_token(claims: dict[str, Any], client: Client, issuer: str) -> str:
    """The signed SET for the queued claims (aud, sub_id, jti, iat, events)."""
    alg = client.id_token_signed_response_alg or config.settings().id_token_default_alg
    key = keys.signing_key(alg)
    body = {"iss": issuer, "iat": claims["iat"], "jti": claims["jti"], "aud": claims["aud"],
            "sub_id": claims["sub_id"], "events": claims["events"]}
    header = {"alg": alg, "kid": key.kid, "typ": "secevent+jwt"}
    return jwt.encode(header, body, keys.private_key(key), [alg])


def _render(message: OutboxMessage) -> outbox.Body:
    client = db.session.get(Client, message.client_id)
    if client is None:
        raise LookupError(f"client {message.client_id} no longer exists")
    token = security_event_token(message.payload, client, config.settings().issuer)
    return outbox.Body(token, MEDIA_TYPE, accept="application/json")


def refused(outcome: dict[str, Any]) -> bool:
    """RFC 8935 §2.3: a 400 refuses the SET itself; other failures may pass."""
    return outcome.get("status") == 400


def metadata(settings: Settings) -> dict[str, Any]:
    """SSF 1.0 §7.1 Transmitter Configuration Metadata.

    Only push delivery is offered, and no stream management API: the
    consortium's admins configure each client's stream (its receiver URI) with
    ``idp clients … --event-receiver-uri`` or the console, so the
    configuration, status, subject and verification endpoints are absent (they
    are OPTIONAL), and with them ``authorization_schemes`` and
    ``default_subjects``, which describe those endpoints' streams.
    """
    return {
        "spec_version": SPEC_VERSION,
        "issuer": settings.issuer,
        "jwks_uri": settings.endpoint("/jwks.json"),
        "delivery_methods_supported": [PUSH_DELIVERY],
    }


def init_app(app: Flask) -> None:
    outbox.register(app, outbox.Kind(
        name=KIND, render=_render, audit_tag=AuditTag.SECURITY_EVENT,
        timeout=lambda: config.settings().security_event_timeout, permanent=refused))
