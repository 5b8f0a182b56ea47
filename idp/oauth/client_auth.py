"""private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9), and the
invalid_client answer when client authentication fails (RFC 6749 §5.2)."""

from __future__ import annotations

import datetime as dt
import json

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from idp import config
from idp import secrets
from idp.db import utcnow
from idp.extensions import db
from idp.oauth.models import UsedClientAssertion


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self) -> list[str]:
        settings = config.settings()
        return [settings.issuer, settings.endpoint("/token"), settings.endpoint("/introspect"),
                settings.endpoint("/revoke")]

    def resolve_client_public_key(self, client):
        """The client's registered keys; a client without any (one registered for
        another method) is invalid_client here, before an assertion is verified:
        joserfc raises MissingKeyError for an empty set, outside Authlib's handling."""
        registered = (client.jwks or {}).get("keys") if isinstance(client.jwks, dict) else None
        if not registered:
            raise InvalidClientError(description="The client has no keys for private_key_jwt.")
        try:
            return KeySet.import_key_set(client.jwks)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidClientError(description="The client's keys cannot be used.") from exc

    def validate_jti(self, claims, jti) -> bool:
        """Each assertion is used once: its jti is kept until the assertion expires."""
        now = utcnow()
        db.session.execute(delete(UsedClientAssertion).where(UsedClientAssertion.expires_at <= now))
        exp = claims.get("exp")
        expires_at = (dt.datetime.fromtimestamp(exp, dt.UTC) if isinstance(exp, int | float)
                      else now + dt.timedelta(hours=1))
        try:
            with db.session.begin_nested():
                db.session.add(UsedClientAssertion(
                    jti_digest=secrets.digest(f"{claims['sub']}:{jti}"),
                    client_id=claims["sub"],
                    expires_at=expires_at,
                ))
        except IntegrityError:
            return False
        return True


def presented_method(request) -> str:
    """The client authentication method a request used (RFC 7591 §2 names)."""
    if request.headers.get("Authorization"):
        return "client_secret_basic"
    if request.form.get("client_assertion"):
        return PrivateKeyJWT.CLIENT_AUTH_METHOD
    if request.form.get("client_secret"):
        return "client_secret_post"
    return "none"


def claimed_client_id(request) -> str | None:
    """The client id a request names (HTTP Basic user name, ``client_id``, or the
    ``sub`` of a ``client_assertion``, RFC 7523 §3), unchecked: it only chooses how
    a failure is answered, never whom to trust."""
    try:
        client_id, _ = extract_basic_authorization(request.headers)
    except ValueError:  # not UTF-8 (UnicodeDecodeError)
        client_id = None
    client_id = client_id or request.payload.data.get("client_id")
    assertion = request.payload.data.get("client_assertion")
    if client_id or not isinstance(assertion, str):
        return client_id
    try:
        claims = json.loads(extract_compact(assertion.encode()).payload)
    except (JoseError, ValueError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


class ClientAuthenticationFailed(InvalidClientError):
    """invalid_client shaped by RFC 6749 §5.2: a client that used the Authorization
    header gets 401 with a ``Basic`` challenge (the scheme it used); so does a
    client registered for client_secret_basic, and a request naming no known
    client (the challenge tells the scheme we support); a known client registered
    for another method (body parameters, assertions) gets 400, since no HTTP
    scheme fits it. The description names the client's own method, never the
    list of all methods."""

    def __init__(self, description: str, challenge: str | None):
        super().__init__(description=description, status_code=401 if challenge else 400)
        self.challenge = challenge

    def get_headers(self):
        headers = OAuth2Error.get_headers(self)
        if self.challenge:
            headers.append(("WWW-Authenticate", self.challenge))
        return headers


def failure(request, client, allowed: list[str], endpoint: str, realm: str):
    """The invalid_client error for a request whose authentication failed; ``client``
    is the active client the request names, if any."""
    used = presented_method(request)
    registered = client.token_endpoint_auth_method if client is not None else None
    if client is None:
        description = "Unknown client, or client authentication failed."
    elif registered not in allowed or not client.check_endpoint_auth_method(registered,
                                                                             endpoint):
        description = f"The client's authentication method ({registered}) is not accepted here."
    elif used != registered:
        description = f"The client must authenticate with {registered}."
    else:
        description = "Client authentication failed."
    # No known client: the challenge says which HTTP scheme we support (§5.2 "MAY").
    basic = used == "client_secret_basic" or registered in (None, "client_secret_basic")
    return ClientAuthenticationFailed(description,
                                      f'Basic realm="{realm}", charset="UTF-8"' if basic else None)
