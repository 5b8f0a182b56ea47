"""Build the Authlib authorization server for one app, and the resource protector.

The server is built per app (``register_grant`` appends to a list, so a
module-level server would pile grants up across test apps); the resource
protector is module-level, as its first registered validator wins anyway.
"""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2 import ResourceProtector as _ResourceProtector
from authlib.integrations.flask_oauth2 import current_token
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc6750 import BearerTokenValidator as _BearerTokenValidator
from authlib.oauth2.rfc6750 import InsufficientScopeError
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE
from flask import Flask
from flask import Request
from flask import Response
from flask import abort
from flask import g
from flask import json
from flask import request as flask_request

from idp import config
from idp import scopes as registry
from idp import secrets
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.service import active_client
from idp.config import Settings
from idp.consent import service as consent_service
from idp.db import reads_first
from idp.exchange import token_reads
from idp.extensions import db
from idp.oauth import client_auth
from idp.oauth import ratelimit
from idp.oauth import tokens
from idp.oauth.client_auth import PrivateKeyJWT
from idp.oauth.client_auth import claimed_client_id
from idp.oauth.device import DeviceAuthorizationEndpoint
from idp.oauth.device import DeviceCodeGrant
from idp.oauth.grants import AuthorizationCodeGrant
from idp.oauth.grants import ClientCredentialsGrant
from idp.oauth.grants import RefreshTokenGrant
from idp.oauth.grants import S256CodeChallenge
from idp.oauth.introspection import IntrospectionEndpoint
from idp.oauth.oidc import DeviceIDToken
from idp.oauth.oidc import EndSessionEndpoint
from idp.oauth.oidc import IssuerResponseParameter
from idp.oauth.oidc import OpenIDCode
from idp.oauth.oidc import UserInfoEndpoint
from idp.oauth.revocation import RevocationEndpoint


class BearerTokenValidator(_BearerTokenValidator):
    def authenticate_token(self, token_string):
        # UserInfo and the APIs read first (the token with all it needs, in one
        # statement) and most UserInfo calls write nothing: no BEGIN before the first
        # write (idp.db.reads_first), one round trip for a call that only reads.
        reads_first(db.session())
        row = tokens.by_access_token(token_string, resident=True)
        if row is not None:
            g.oauth_client = row.client  # whose origins may read the answer (idp.oauth.cors)
        return row

    def authenticate_state(self, token_string, *, resident: bool = False):
        """As ``authenticate_token``, the token as values (``tokens.TokenState``), for a
        request answered beneath Flask that uses no object of it; ``validate_token``
        checks it as it checks a ``Token``. Touch events may write afterwards (read first,
        as ``authenticate_token``); UserInfo (``resident``: ``ResidentTokenState``)
        reads its token by itself, and writes a new release in a transaction of its own."""
        if not resident:
            reads_first(db.session())
        return tokens.state_by_access_token(token_string, resident=resident)

    def validate_token(self, token, scopes, request):
        """Authlib's checks (present, unexpired, unrevoked), then the scopes against the
        consent in force now rather than at issuance: a resident token whose consent was
        withdrawn or has expired is invalid (401), one narrowed since covers only what
        is left (RFC 6750 §3.1 ``insufficient_scope`` for the rest)."""
        super().validate_token(token, None, request)
        in_force = consent_service.scopes_in_force_for(token)
        if token.resident_id is not None and not in_force:
            raise InvalidTokenError(realm=self.realm, extra_attributes=self.extra_attributes)
        if self.scope_insufficient(" ".join(in_force), scopes):
            raise InsufficientScopeError()
        # Every accepted read counts (the monitoring flags a token read far more often
        # than the company's tokens usually are).
        token_reads.count(token)


class NoBearerCredentials(OAuth2Error):
    """RFC 6750 §3.1: a request without Bearer credentials gets a bare challenge,
    with no error code or other error information."""

    status_code = 401

    def get_headers(self):
        return [("WWW-Authenticate", "Bearer"), ("Cache-Control", "no-store")]

    def __call__(self, uri=None):
        return self.status_code, "", self.get_headers()


class MalformedBearerRequest(InvalidTokenError):
    """RFC 6750 §3.1 invalid_request: ``Authorization: Bearer`` without one token."""

    error = "invalid_request"
    description = "The Authorization header must be 'Bearer' followed by one token."
    status_code = 400


class ResourceProtector(_ResourceProtector):
    def parse_request_authorization(self, request):
        """The Bearer token (RFC 6750 §2.1). No header, or another scheme, means no
        Bearer credentials (§3.1: no error code); a Bearer header that does not
        carry exactly one token is malformed (invalid_request, 400)."""
        scheme, _, token = (request.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            raise NoBearerCredentials()
        token = token.strip()
        if not token or any(c.isspace() for c in token):
            raise MalformedBearerRequest()
        return self.get_token_validator("bearer"), token

    def raise_error_response(self, error):
        """RFC 6750 §3 answers (401/403 with WWW-Authenticate) as a complete
        response, so the app's error pages pass it through untouched."""
        if isinstance(error, NoBearerCredentials):
            abort(Response(status=error.status_code, headers=error.get_headers()))
        body = json.dumps(dict(error.get_body()))
        abort(Response(body, status=error.status_code, headers=error.get_headers()))


require_oauth = ResourceProtector()
require_oauth.register_token_validator(BearerTokenValidator())


def bearer_token():
    """The token a ``require_oauth`` view was called with (Authlib's ``current_token``):
    resource APIs (``idp.api``) read it here, so only idp.oauth imports Authlib."""
    return current_token._get_current_object()


class TokenGenerator(BearerTokenGenerator):
    """Opaque random tokens; a refresh token only with ``offline_access``
    (OIDC Core §11) and a client registered for the refresh_token grant, and never
    for a kiosk (device flow): its session ends at ``kiosk_max_session``."""

    def __init__(self, settings: Settings):
        super().__init__(
            access_token_generator=lambda **_: secrets.token(32),
            refresh_token_generator=lambda **_: secrets.token(32),
            expires_generator=lambda client, grant_type: self.expires_in(settings, grant_type),
        )

    @staticmethod
    def expires_in(settings: Settings, grant_type: str) -> int:
        """A device-flow token is a resident's session at a kiosk: it lives no longer than
        ``kiosk_max_session``, whatever the vendor's kiosk does (docs/kiosk.md)."""
        if grant_type == DEVICE_CODE_GRANT_TYPE:
            return min(settings.access_token_ttl, settings.kiosk_max_session)
        return settings.access_token_ttl

    def generate(self, grant_type, client, user=None, scope=None, expires_in=None,
                 include_refresh_token=True):
        refuse_without_contract(client, scope)
        include_refresh_token = (
            include_refresh_token
            and "offline_access" in scope_to_list(scope or "")
            and client.check_grant_type("refresh_token")
            # Registration refuses the combination; a client row from before that
            # rule still gets none (docs/kiosk.md §6).
            and grant_type != DEVICE_CODE_GRANT_TYPE
            and not client.check_grant_type(DEVICE_CODE_GRANT_TYPE)
        )
        return super().generate(grant_type, client, user=user, scope=scope,
                                expires_in=expires_in,
                                include_refresh_token=include_refresh_token)


def refuse_without_contract(client, scope: str | None) -> None:
    """A family's scope (``contribute:``/``registered:<category>``) is issued only while a
    data-use contract of the client's company in force names the category: the
    contract may have ended or expired since the client was registered. invalid_scope
    saying why, audited (the token endpoint keeps its error's writes)."""
    refused = [(s, reason) for s in scope_to_list(scope or "")
               if (reason := registry.refusal(client.company_id, s)) is not None]
    for name, reason in refused:
        record(AuditTag.DATA_CONTRACT_REFUSED, actor="client", client_id=client.id,
               company_id=client.company_id, use="token", scope=name, reason=reason)
    if refused:
        name, reason = refused[0]
        raise InvalidScopeError(describe(f"{name}: {reason}"))


class _Payload(FlaskOAuth2Payload):
    """The request's parameters, with standard OIDC scopes read as our finer ones
    (idp.scopes). Once the client is known (Authlib sets it before it checks
    the scope), a standard scope covers only the finer scopes the client is
    registered for."""

    def __init__(self, request: Request, oauth_request: FlaskOAuth2Request):
        super().__init__(request)
        self._oauth_request = oauth_request

    @property
    def scope(self) -> str | None:
        client = self._oauth_request.client
        return registry.expand(super().scope, client.scopes if client is not None else None)


class OAuthRequest(FlaskOAuth2Request):
    def __init__(self, request: Request):
        super().__init__(request)
        self.payload = _Payload(request, self)


class OAuthServer(AuthorizationServer):
    def create_oauth2_request(self, request):
        # A stored authorization request (an interaction resumed after login
        # or consent) is replayed as a rebuilt request object. One already built
        # (``create_token_response``) is used as it is, not built a second time.
        if isinstance(request, OAuthRequest):
            return request
        return OAuthRequest(request if isinstance(request, Request) else flask_request)

    def authenticate_client(self, request, methods, endpoint="token"):
        """Authlib's client authentication, with invalid_client answered for the
        client's own registered method (client_auth.failure, RFC 6749 §5.2)."""
        try:
            client = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            claimed = claimed_client_id(request)
            named = self.query_client(claimed) if claimed else None
            g.oauth_client = named  # its origins may read the error (idp.oauth.cors)
            g.oauth_client_id = named.id if named is not None else None  # idp.logs
            # Audited (kept although the answer is an error): the monitoring flags bursts.
            record(AuditTag.CLIENT_AUTH_FAILURE, actor="client",
                   client_id=named.id if named is not None else None,
                   company_id=named.company_id if named is not None else None,
                   endpoint=endpoint, claimed=(claimed or "")[:100] if named is None else None)
            realm = config.settings().issuer
            raise client_auth.failure(request, named, methods, endpoint, realm) from error
        g.oauth_client = client
        # The request log line names the client after the commit, when the object's
        # attributes are expired: reading client.id then cost a SELECT per request.
        g.oauth_client_id = client.id
        return client

    def create_token_response(self, request=None):
        """RFC 6749 §4.1.3/§3.2: a token request is a form post with a grant_type;
        anything else is invalid_request (Authlib would say unsupported_grant_type,
        which tells the client to try another grant, not to fix the request)."""
        oauth_request = self.create_oauth2_request(request)
        if oauth_request.payload.grant_type is None:
            if flask_request.mimetype != "application/x-www-form-urlencoded":
                error = InvalidRequestError(
                    "The token request must be sent as application/x-www-form-urlencoded.")
            else:
                error = InvalidRequestError("Missing 'grant_type' parameter.")
            return self.handle_error_response(oauth_request, error)
        return super().create_token_response(oauth_request)

    def validate_requested_scope(self, scope):
        unknown = [s for s in scope_to_list(scope or "") if not registry.known(s)]
        if unknown:
            raise InvalidScopeError(describe("Unknown scope: " + " ".join(unknown)))


def describe(text: str, limit: int = 200) -> str:
    """Make text safe for ``error_description`` (RFC 6749 §5.2: %x20-21 / %x23-5B / %x5D-7E).

    Authlib refuses other characters with a ValueError, so anything echoing
    request input must pass through here first.
    """
    safe = "".join(c if (0x20 <= ord(c) <= 0x7E and c not in '"\\') else "?" for c in text)
    return safe[:limit]


def build_authorization_server(app: Flask, settings: Settings) -> OAuthServer:
    server = OAuthServer()
    # Token requests count against the client authentication looks up (idp.oauth.ratelimit).
    server.init_app(app, query_client=ratelimit.counted(active_client), save_token=tokens.save)
    server.register_token_generator("default", TokenGenerator(settings))
    # The fixed scopes only: requests are checked by validate_requested_scope (families
    # included), and discovery lists the families' scopes as they are at each request.
    server.scopes_supported = registry.supported(families=False)
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDCode()])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_grant(DeviceCodeGrant, [DeviceIDToken()])
    server.register_endpoint(DeviceAuthorizationEndpoint)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_endpoint(UserInfoEndpoint(resource_protector=require_oauth))
    server.register_endpoint(EndSessionEndpoint)
    issuer_parameter = IssuerResponseParameter()
    server.register_extension(issuer_parameter)
    app.extensions["idp.oauth.iss"] = issuer_parameter
    app.extensions["idp.oauth"] = server
    return server
