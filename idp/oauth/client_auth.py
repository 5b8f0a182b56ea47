"""private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9)."""

from __future__ import annotations

import datetime as dt

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from idp import secrets
from idp.db import utcnow
from idp.extensions import db
from idp.oauth.models import UsedClientAssertion


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self) -> list[str]:
        settings = current_app.extensions["idp.settings"]
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
