"""OpenID Connect: ID tokens (code flow), userinfo, RP-initiated logout, RFC 9207.

Claims come from ``claims.claims_for`` for the token's scopes only, with the
company's pairwise `sub`; each release is audited (which claims, to whom,
when) so the resident's usage history can show it. ``verified_claims``
(OpenID Connect for Identity Assurance 1.0) are added when the client asked
through the ``claims`` parameter and the resident consented
(``idp.oauth.assurance``).

ID tokens of a browser sign-in carry ``sid`` (OIDC Back-Channel Logout 1.0
§2.1), the value logout tokens carry too; ending a session notifies the
clients that registered a back-channel logout URI (``idp.oauth.backchannel``).
"""

from __future__ import annotations

import hashlib
import time

from authlib.integrations.flask_oauth2 import current_token
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import UserInfo
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint
from authlib.oidc.core.grants import OpenIDCode as _OpenIDCode
from authlib.oidc.core.grants import OpenIDToken
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import current_app
from flask import session
from sqlalchemy import exists
from sqlalchemy import select

from idp.accounts import service as accounts
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.extensions import db
from idp.keys import service as keys
from idp.oauth import assurance
from idp.oauth import backchannel
from idp.oauth.claims import claims_for
from idp.oauth.claims import released_claim_names
from idp.oauth.models import AuthorizationCode
from idp.oauth.models import Token
from idp.oauth.tokens import Principal


def _settings():
    return current_app.extensions["idp.settings"]


def release(principal: Principal, scope: str, channel: str, token: Token | None = None) -> dict:
    """The claims for this client and scope, with an audit record of the release.

    ``channel`` is ``id_token`` or ``userinfo``, the target of the ``claims``
    request parameter whose verified_claims may be added. With ``token`` (a
    UserInfo call) the release is recorded once per token and set of claim
    names: a relying party calling UserInfo on every request of its user
    releases the same items each time, and the resident's history and the
    audit trail show when a company received which items, not how often it
    asked again (docs/consent.md).
    """
    client = principal.client
    claims = claims_for(principal.resident, scope.split(), principal.sub)
    names = released_claim_names(claims)
    verified = assurance.release_for(principal, channel)
    if verified is not None:
        claims[assurance.VERIFIED_CLAIMS] = verified
        items = verified if isinstance(verified, list) else [verified]
        names += sorted({f"verified_claims.{name}" for item in items for name in item["claims"]})
    if token is not None:
        released = hashlib.sha256(f"{channel}\n{','.join(names)}".encode()).hexdigest()
        if token.released_claims == released:
            return claims
        token.released_claims = released
    record(AuditTag.CLAIMS_RELEASE, resident_id=principal.resident.id, client_id=client.id,
           company_id=client.company_id, claims=names, channel=channel)
    return claims


class IDTokenSigning:
    """How our ID tokens are signed and what they carry; shared by the code
    flow (``OpenIDCode``) and the device flow (``DeviceIDToken``)."""

    def get_client_algorithm(self, client) -> str:
        return client.id_token_signed_response_alg or _settings().id_token_default_alg

    def resolve_client_private_key(self, client):
        return keys.private_key(keys.signing_key(self.get_client_algorithm(client)))

    def get_encode_header(self, client) -> dict:
        alg = self.get_client_algorithm(client)
        return {"alg": alg, "kid": keys.signing_key(alg).kid, "typ": "JWT"}

    def get_client_claims(self, client) -> dict:
        now = int(time.time())
        return {"iss": _settings().issuer, "aud": client.id, "iat": now,
                "exp": now + _settings().id_token_ttl}

    def generate_user_info(self, user: Principal, scope: str) -> UserInfo:
        return UserInfo(release(user, scope, "id_token"))


class OpenIDCode(IDTokenSigning, _OpenIDCode):
    def validate_openid_authorization_request(self, grant, redirect_uri):
        """Nonce (Authlib), then the ``claims`` parameter (OIDC Core §5.5)."""
        super().validate_openid_authorization_request(grant, redirect_uri)
        try:
            assurance.parse(grant.request.payload.data.get("claims"))
        except assurance.ClaimsRequestError as error:
            raise InvalidRequestError(str(error), redirect_uri=redirect_uri) from None

    def get_authorization_code_claims(self, authorization_code) -> dict:
        claims = super().get_authorization_code_claims(authorization_code)
        if authorization_code.session_id is not None:
            client = db.session.get(Client, authorization_code.client_id)
            claims["sid"] = backchannel.sid_for(authorization_code.session_id,
                                                client.company_id)
        return claims

    def exists_nonce(self, nonce, request) -> bool:
        return bool(db.session.scalar(select(exists().where(
            AuthorizationCode.client_id == request.payload.client_id,
            AuthorizationCode.nonce == nonce,
        ))))


class DeviceIDToken(IDTokenSigning, OpenIDToken):
    """An ID token for a device-flow grant with ``openid``: the kiosk learns the
    resident's pairwise `sub` for this company, nothing the resident did not approve."""


class UserInfoEndpoint(_UserInfoEndpoint):
    def get_issuer(self) -> str:
        return _settings().issuer

    def resolve_private_key(self):
        return keys.private_key(keys.signing_key("RS256"))

    def get_supported_algorithms(self) -> list[str]:
        return ["RS256", "ES256"]

    def generate_user_info(self, user, scope: str) -> UserInfo:
        token = current_token._get_current_object()
        if user is None or token.subject is None:
            raise InvalidTokenError("The token does not belong to a resident.")
        return UserInfo(release(Principal(user, token.subject, token.client, claims=token.claims),
                                scope, "userinfo", token))


class EndSessionEndpoint(_EndSessionEndpoint):
    def get_server_jwks(self):
        # A KeySet, possibly empty: a hint before any key exists is an invalid hint.
        return keys.verification_keys()

    def get_algorithms(self) -> list[str]:
        return ["RS256", "ES256"]

    def end_session(self, end_session_request) -> None:
        client = end_session_request.client
        audit = {"client_id": client.id, "company_id": client.company_id,
                 "rp_initiated": True} if client is not None else {}
        row = accounts.load_session(session.get("sid"))
        if row is not None:
            # Every client this session signed in to, told once the logout commits.
            backchannel.queue(backchannel.notices_for_session(row))
        accounts.end_session(session.get("sid"), **audit)
        session.pop("sid", None)


class IssuerResponseParameter(IssuerParameter):
    """RFC 9207: `iss` in every authorization response, errors included."""

    def get_issuer(self) -> str:
        return _settings().issuer


