"""OpenID Connect: ID tokens (code and device flows), userinfo, RP-initiated logout, RFC 9207.

Claims come from ``claims.claims_for`` for the token's scopes only, within the
consent in force at the moment of release, with the company's pairwise `sub`;
each release is audited (which claims, to whom, when) so the resident's usage
history can show it. ``verified_claims`` (OpenID Connect for Identity Assurance
1.0) are added when the client asked through the ``claims`` parameter and the
resident consented (``idp.oauth.assurance``). ``registered_data`` (the values of
the ``registered:<category>`` scopes, per data link: ``idp.exchange.release``) is
added at UserInfo, and to the ID token when the ``claims`` parameter's
``id_token`` member names it.

ID tokens of a browser sign-in carry ``sid`` (OIDC Back-Channel Logout 1.0
§2.1), the value logout tokens carry too; ending a session notifies the
clients that registered a back-channel logout URI (``idp.oauth.backchannel``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from dataclasses import dataclass

from authlib.integrations.flask_oauth2 import current_token
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import UserInfo
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint
from authlib.oidc.core.grants import OpenIDCode as _OpenIDCode
from authlib.oidc.core.grants import OpenIDToken
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from authlib.oidc.rpinitiated import EndSessionRequest
from flask import current_app
from flask import session
from sqlalchemy import exists
from sqlalchemy import select

from idp import config
from idp.access import service as access
from idp.access import sessions
from idp.access.models import AuthorizationCode
from idp.access.models import DeviceCode
from idp.access.models import Token
from idp.access.notices import sid_for
from idp.access.subjects import existing_subject
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.consent import service as consent_service
from idp.exchange import release as registered
from idp.extensions import db
from idp.keys import service as keys
from idp.oauth import assurance
from idp.oauth.claims import AUTH_TIME
from idp.oauth.claims import REGISTERED_DATA
from idp.oauth.claims import claims_for
from idp.oauth.claims import released_claim_names
from idp.oauth.tokens import Principal
from idp.security.algorithms import SIGNING_ALGS


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
    # The token's (or code's) scopes within the consent in force now: a consent
    # narrowed, withdrawn or expired since issuance releases no more than it says.
    consented = principal.consent_in_force()
    scopes = consent_service.covered(scope.split(), consented)
    claims = claims_for(principal.resident, scopes, principal.sub)
    names = released_claim_names(claims)
    verified = assurance.release_for(principal, channel)
    if verified is not None:
        claims[assurance.VERIFIED_CLAIMS] = verified
        items = verified if isinstance(verified, list) else [verified]
        names += sorted({f"verified_claims.{name}" for item in items for name in item["claims"]})
    data = None
    if channel == "userinfo" or (principal.claims or {}).get(REGISTERED_DATA):
        # Registered data (item 5): per data link and contract in force at this moment.
        data = registered.registered_data(principal.resident.id, client, scopes)
        if data.claim:
            claims[registered.CLAIM] = data.claim
            names += data.claim_names()
    if token is not None:
        links = ",".join(map(str, data.links)) if data is not None else ""
        released = hashlib.sha256(f"{channel}\n{','.join(names)}\n{links}".encode()).hexdigest()
        if token.released_claims == released:
            return claims
        token.released_claims = released
    record(AuditTag.CLAIMS_RELEASE, resident_id=principal.resident.id, client_id=client.id,
           company_id=client.company_id, claims=names, channel=channel)
    if data is not None and data.claim:
        registered.audit(data, principal.resident.id, client, channel)
    return claims


class IDTokenSigning:
    """How our ID tokens are signed and what they carry; shared by the code
    flow (``OpenIDCode``) and the device flow (``DeviceIDToken``)."""

    def get_client_algorithm(self, client) -> str:
        return client.id_token_signed_response_alg or config.settings().id_token_default_alg

    def resolve_client_private_key(self, client):
        return keys.private_key(keys.signing_key(self.get_client_algorithm(client)))

    def get_encode_header(self, client) -> dict:
        alg = self.get_client_algorithm(client)
        return {"alg": alg, "kid": keys.signing_key(alg).kid, "typ": "JWT"}

    def get_client_claims(self, client) -> dict:
        now = int(time.time())
        return {"iss": config.settings().issuer, "aud": client.id, "iat": now,
                "exp": now + config.settings().id_token_ttl}

    def get_compatible_claims(self, request) -> dict:
        """Authlib's base claims, without the ``auth_time`` it defaults to "now": the
        code flow adds the real one when the request needs it (``OpenIDCode``)."""
        claims = super().get_compatible_claims(request)
        claims.pop("auth_time", None)
        return claims

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
        if not (authorization_code.claims or {}).get(AUTH_TIME):
            # Only when the request needs it (claims.auth_time_requested): a
            # session's sign-in time is the same at every company it signs in to.
            claims.pop("auth_time", None)
        if authorization_code.session_id is not None:
            client = db.session.get(Client, authorization_code.client_id)
            claims["sid"] = sid_for(authorization_code.session_id,
                                                client.company_id)
        return claims

    def exists_nonce(self, nonce, request) -> bool:
        """Whether a code of this client already carried ``nonce`` (replay). Authlib
        validates an authorization request again when it issues the code: the
        request remembers the nonce it found unused, so that is one query, not two."""
        if getattr(request, "idp_unused_nonce", None) == nonce:
            return False
        found = bool(db.session.scalar(select(exists().where(
            AuthorizationCode.client_id == request.payload.client_id,
            AuthorizationCode.nonce == nonce,
        ))))
        if not found:
            request.idp_unused_nonce = nonce
        return found


class DeviceIDToken(IDTokenSigning, OpenIDToken):
    """An ID token for a device-flow grant with ``openid``: the kiosk learns the
    resident's pairwise `sub` for this company, nothing the resident did not approve,
    and how the resident signed in on the phone that approved (``amr``, RFC 8176;
    ``acr`` after a passkey), as the code flow's ID token says it.

    Authlib adds ``amr``/``acr`` only from an authorization code; here they come from
    the device code, which recorded them at approval (``device.decide``). RFC 8628's
    device authorization request has no ``acr_values``: a kiosk cannot ask for a
    passkey, it can only read what the resident used."""

    def get_compatible_claims(self, request) -> dict:
        claims = super().get_compatible_claims(request)
        credential = getattr(request, "credential", None)
        if isinstance(credential, DeviceCode):
            if amr := credential.get_amr():
                claims["amr"] = amr
            if acr := credential.get_acr():
                claims["acr"] = acr
        return claims


class UserInfoEndpoint(_UserInfoEndpoint):
    def get_issuer(self) -> str:
        return config.settings().issuer

    def resolve_private_key(self):
        return keys.private_key(keys.signing_key("RS256"))

    def get_supported_algorithms(self) -> list[str]:
        return list(SIGNING_ALGS)

    def generate_user_info(self, user, scope: str) -> UserInfo:
        token = current_token._get_current_object()
        if user is None or token.subject is None:
            raise InvalidTokenError("The token does not belong to a resident.")
        # The consent in force was read with the token (the resource protector has
        # already refused a token whose consent is gone).
        principal = Principal(user, token.subject, token.client, claims=token.claims,
                              consented=consent_service.consented_for(token))
        return UserInfo(release(principal, scope, "userinfo", token))


@dataclass
class EndSession(EndSessionRequest):
    """A validated logout request that also knows whether its ``id_token_hint`` names
    the session of this browser."""

    other_session: bool = False

    @property
    def needs_confirmation(self) -> bool:
        # RP-Initiated Logout 1.0 §2/§3 and §6: without a hint, or with the hint of
        # another session or another resident, the resident confirms first; a
        # stranger's ID token must not sign this browser out unasked.
        return self.id_token_claims is None or self.other_session


class EndSessionEndpoint(_EndSessionEndpoint):
    def validate_request(self, request) -> EndSession:
        end = super().validate_request(request)
        values = {f.name: getattr(end, f.name) for f in dataclasses.fields(end)}
        return EndSession(**values, other_session=self._for_another_session(end))

    @staticmethod
    def _for_another_session(end: EndSessionRequest) -> bool:
        """True when this browser has a session and the hint is not from it: its ``sid``
        is not this session's for the client's company, or its ``sub`` is not this
        resident's pairwise ``sub`` there. Without a session here there is nothing
        to end, so nothing to confirm."""
        if end.id_token_claims is None:
            return False
        row = sessions.load_session(session.get("sid"))
        if row is None:
            return False
        client = end.client
        if client is None:
            return True
        sid, sub = end.id_token_claims.get("sid"), end.id_token_claims.get("sub")
        if not isinstance(sid, str) or not isinstance(sub, str):
            return True
        ours = sid_for(row.id, client.company_id)
        return not (hmac.compare_digest(sid.encode(), ours.encode())
                    and sub == existing_subject(row.resident_id, client.company_id))

    def get_server_jwks(self):
        # A KeySet, possibly empty: a hint before any key exists is an invalid hint.
        return keys.verification_keys()

    def get_algorithms(self) -> list[str]:
        return list(SIGNING_ALGS)

    def end_session(self, end_session_request) -> None:
        client = end_session_request.client
        audit = {"client_id": client.id, "company_id": client.company_id,
                 "rp_initiated": True} if client is not None else {}
        row = sessions.load_session(session.get("sid"))
        if row is not None:
            # Every client this session signed in to is told once the logout commits.
            access.end_sessions(row.resident_id, "logout", session=row)
            record(AuditTag.LOGOUT, resident_id=row.resident_id, **audit)
        session.pop("sid", None)


class EndSessionRefused(Exception):
    """An RP-initiated logout request the protocol refuses; ``detail`` is its own
    words (``error: description``), for the page the interaction shows."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def validate_end_session():
    """The validated end-session request of the current HTTP request (OIDC
    RP-Initiated Logout 1.0 §2); raises ``EndSessionRefused``."""
    try:
        return current_app.extensions["idp.oauth"].validate_endpoint_request("end_session")
    except OAuth2Error as error:
        raise EndSessionRefused(f"{error.error}: {error.description or ''}") from None


class IssuerResponseParameter(IssuerParameter):
    """RFC 9207: `iss` in every authorization response, errors included."""

    def get_issuer(self) -> str:
        return config.settings().issuer


