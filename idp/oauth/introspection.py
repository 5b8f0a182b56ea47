"""RFC 7662 token introspection, for confidential clients.

A client may introspect tokens issued to any client of its own company (a
company's resource servers serve all its apps); any other token answers
``{"active": false}``, exactly as an unknown one does.
"""

from __future__ import annotations

from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from flask import current_app

from idp.oauth import tokens
from idp.oauth.grants import CONFIDENTIAL_AUTH_METHODS


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return tokens.presented(token_string, token_type_hint)

    def check_permission(self, token, client, request) -> bool:
        return not client.is_public and token.get_client().company_id == client.company_id

    def introspect_token(self, token) -> dict:
        row = token.row
        payload = {
            "active": True,
            "client_id": row.client_id,
            "scope": row.scope,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "exp": int(token.expires_at.timestamp()),
            "iat": int(row.issued_at.timestamp()),
            "iss": current_app.extensions["idp.settings"].issuer,
            "aud": row.client_id,
        }
        if row.subject:
            payload["sub"] = row.subject
        return payload
