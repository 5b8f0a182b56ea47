"""RFC 7662 token introspection, for confidential clients.

A client may introspect tokens issued to any client of its own company (a
company's resource servers serve all its apps); any other token answers
``{"active": false}``, exactly as an unknown one does. ``scope`` is what the
token may do now: its scopes within the resident's consent in force, and a
resident token whose consent is gone is ``{"active": false}``.
"""

from __future__ import annotations

import datetime as dt

from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint

from idp import config
from idp.consent import service as consent_service
from idp.db import reads_first
from idp.extensions import db
from idp.oauth import tokens
from idp.oauth.grants import CONFIDENTIAL_AUTH_METHODS


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        # From here the request only reads: the token's lookup (with the consent and the
        # revocation epoch along), then the answer. One round trip, not three.
        reads_first(db.session())
        return tokens.presented(token_string, token_type_hint)

    def check_permission(self, token, client, request) -> bool:
        return not client.is_public and token.get_client().company_id == client.company_id

    def introspect_token(self, token) -> dict:
        row = token.row
        # What the token may still do: its scopes within the consent in force now.
        scopes = consent_service.scopes_in_force_for(row)
        if row.resident_id is not None and not scopes:
            return {"active": False}  # consent withdrawn, expired or under replaced terms
        return active(row, scopes, token.kind, token.expires_at)


def active(row, scopes: list[str], kind: str, expires_at: dt.datetime) -> dict:
    """The answer for an active token: ``row`` has the token's ``client_id``, ``subject``
    and ``issued_at`` (a ``Token``, or a ``tokens.TokenState`` beneath Flask)."""
    payload = {
        "active": True,
        "client_id": row.client_id,
        "scope": " ".join(scopes),
        "token_type": "Bearer" if kind == "access_token" else "refresh_token",
        "exp": int(expires_at.timestamp()),
        "iat": int(row.issued_at.timestamp()),
        "iss": config.settings().issuer,
        "aud": row.client_id,
    }
    if row.subject:
        payload["sub"] = row.subject
    return payload
