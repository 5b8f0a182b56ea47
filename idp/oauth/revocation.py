"""RFC 7009 token revocation, token-family aware."""

from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint

from idp.oauth import tokens
from idp.oauth.grants import ALL_AUTH_METHODS


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return tokens.presented(token_string, token_type_hint)

    def revoke_token(self, token, request) -> None:
        """A refresh token revokes its family (RFC 7009 §2.1: 'SHOULD also
        invalidate all access tokens based on the same authorization grant');
        an access token revokes its own issuance."""
        tokens.revoke(token, request.client)
