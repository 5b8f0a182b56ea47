"""Grants: authorization code (+PKCE S256), refresh token (rotation), client credentials.

Authlib drives each flow; we fill its storage hooks. Two rules matter most:

- a code is redeemed once (RFC 6749 §4.1.2): the first redemption marks it
  used with a conditional UPDATE; any later one answers ``invalid_grant``
  and revokes every token issued from the code;
- a refresh token is used once (RFC 9700 §4.14.2): it rotates, and presenting
  a rotated one revokes its whole family.
"""

from __future__ import annotations

import datetime as dt

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from sqlalchemy.orm import with_expression

from idp import config
from idp import scopes
from idp import secrets
from idp.access.models import AuthorizationCode
from idp.access.subjects import subject_for
from idp.access.subjects import subject_sql
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.consent import service as consent_service
from idp.db import claim_once
from idp.db import utcnow
from idp.exchange.scopes import RECEIVE
from idp.extensions import db
from idp.oauth import assurance
from idp.oauth import tokens
from idp.oauth.claims import AUTH_TIME
from idp.oauth.claims import REGISTERED_DATA
from idp.oauth.claims import auth_time_requested
from idp.oauth.claims import id_token_requested
from idp.oauth.tokens import Principal

CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
ALL_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only (RFC 9700 §2.1.1); required for public clients."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        if grant.request.client.is_public and not challenge:
            raise InvalidRequestError("Public clients must send a 'code_challenge' (PKCE, S256).")
        if challenge and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be 'S256'.")
        super().validate_code_challenge(grant, redirect_uri)


class WithinConsent:
    """Tokens for a resident carry only the scopes the consent in force covers when
    they are issued: at code redemption, at the device poll and at refresh (RFC 6749
    §6), whatever the code, device code or refresh token was issued with. Every later
    use is checked against the consent again (``consent.service.scopes_in_force_for``)."""

    def generate_token(self, user=None, scope=None, **kwargs):
        if user is not None:
            consented = user.consent_in_force()
            scope = " ".join(consent_service.covered(scope_to_list(scope or ""), consented))
        return super().generate_token(user=user, scope=scope, **kwargs)


class AuthorizationCodeGrant(WithinConsent, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        """Exact match only; unlike Authlib's, the error does not echo the URI
        (its characters may be ones an error_description cannot carry)."""
        redirect_uri = request.payload.redirect_uri
        if redirect_uri:
            if not client.check_redirect_uri(redirect_uri):
                raise InvalidRequestError("The 'redirect_uri' is not registered for this client.")
            return redirect_uri
        redirect_uri = client.get_default_redirect_uri()
        if not redirect_uri:
            raise InvalidRequestError("Missing 'redirect_uri' in request.",
                                      state=request.payload.state)
        return redirect_uri

    def save_authorization_code(self, code: str, request) -> AuthorizationCode:
        """Store the code's digest with what it grants: the requested scopes the
        resident has consented to, never more."""
        settings = config.settings()
        resident = request.user
        consented = getattr(request, "consented", None)
        if consented is None:
            consented = consent_service.scopes_in_force(resident.id, request.client.id)
        scope = " ".join(consent_service.covered(scope_to_list(request.scope or ""), consented))
        browser_session = getattr(request, "browser_session", None)
        now = utcnow()
        data = request.payload.data
        claims = assurance.granted(data, request.client, consented) \
            if "openid" in scope_to_list(scope) else None
        if "openid" in scope_to_list(scope) and auth_time_requested(data):
            # Only then does the ID token carry auth_time (OIDC Core §2; claims.py).
            claims = {**(claims or {}), AUTH_TIME: True}
        if "openid" in scope_to_list(scope) and id_token_requested(data, REGISTERED_DATA) \
                and any(s.startswith(RECEIVE) for s in scope_to_list(scope)):
            # The ID token carries registered_data only when asked (idp.oauth.oidc.release).
            claims = {**(claims or {}), REGISTERED_DATA: True}
        row = AuthorizationCode(
            code_digest=secrets.digest(code),
            client_id=request.client.id,
            resident_id=resident.id,
            redirect_uri=request.payload.redirect_uri or "",
            scope=scope,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=browser_session.auth_time if browser_session else now,
            session_id=browser_session.id if browser_session else None,
            claims=claims,
            expires_at=now + dt.timedelta(seconds=settings.authorization_code_ttl),
        )
        db.session.add(row)
        db.session.flush()
        record(AuditTag.CODE_ISSUE, resident_id=resident.id, client_id=request.client.id,
               company_id=request.client.company_id, scope=scope)
        return row

    def query_authorization_code(self, code: str, client) -> AuthorizationCode | None:
        """Find and consume the code in one step; a second redemption is a replay."""
        if not isinstance(code, str) or not code:
            return None
        row = db.session.scalar(_CODE_BY_DIGEST, {
            "digest": secrets.digest(code), "company_id": client.company_id,
            **consent_service.in_force_values()})
        if row is None or row.client_id != client.id:
            return None
        now = utcnow()
        if row.used_at is None and row.is_expired(now):
            return None
        if not claim_once(db.session, AuthorizationCode.used_at, row.id, now):
            families = tokens.revoke_from_code(row.id)
            record(AuditTag.CODE_REPLAY, resident_id=row.resident_id, client_id=client.id,
                   company_id=client.company_id, code_id=row.id, revoked_families=families)
            return None
        return row

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: the code was consumed when it was looked up, and its
        row stays so a replay can be recognised and answered."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Principal | None:
        resident = authorization_code.resident
        if resident is None:
            return None
        client = self.request.client
        # The `sub` and the consent in force are read along with the code (_CODE_BY_DIGEST).
        sub = authorization_code.pairwise_sub or subject_for(resident.id, client.company_id)
        principal = Principal(resident, sub, client, claims=authorization_code.claims,
                              consented=consent_service.consented_for(authorization_code))
        if not principal.consent_in_force():
            # Expired, or given under terms since replaced, after the code was issued:
            # the code must not outlive its consent (a withdrawal expires codes at once).
            return None
        return principal


# A code's lookup, built once per process, with what its redemption reads next in the
# same statement: the resident (the ID token's and the token's subject), the browser
# session it was issued in (``amr``/``acr``, ``sid``), the consent in force the tokens
# are issued within, and the resident's `sub` at the client's company. Each was a
# statement of its own. Run with ``digest``, ``company_id`` (the authenticated
# client's company) and the consent's ``in_force_values()``.
_CODE_BY_DIGEST = (select(AuthorizationCode)
                   .where(AuthorizationCode.code_digest == bindparam("digest"))
                   .options(joinedload(AuthorizationCode.resident),
                            joinedload(AuthorizationCode.browser_session),
                            with_expression(AuthorizationCode.consent_scopes,
                                            consent_service.in_force_sql(
                                                AuthorizationCode.resident_id,
                                                AuthorizationCode.client_id)),
                            with_expression(AuthorizationCode.pairwise_sub,
                                            subject_sql(AuthorizationCode.resident_id,
                                                        bindparam("company_id")))))


class RefreshTokenGrant(WithinConsent, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str):
        row = tokens.by_refresh_token(refresh_token, resident=True)
        client = self.request.client
        if row is None or not row.check_client(client):
            return None
        now = utcnow()
        if row.refresh_used_at is not None:
            # Reuse of a rotated token: someone holds a copy. Kill the family.
            tokens.revoke_family(row.family_id, "refresh_reuse", resident_id=row.resident_id,
                                 client_id=client.id, company_id=client.company_id)
            record(AuditTag.REFRESH_REUSE, resident_id=row.resident_id, client_id=client.id,
                   company_id=client.company_id, family=row.family_id)
            return None
        if not row.refresh_usable(now):
            return None
        if row.grant_type == DEVICE_CODE_GRANT_TYPE or client.check_grant_type(
                DEVICE_CODE_GRANT_TYPE):
            # A kiosk session ends at kiosk_max_session: a refresh token a kiosk holds from
            # before registration refused the combination is not honoured (docs/kiosk.md §6).
            return None
        # Read with the token; kept for generate_token (the consent cannot change
        # within this transaction). None: no resident, no consent involved.
        self._consented = consent_service.consented_for(row)
        if self._consented is not None and not self._consented:
            return None  # withdrawn, expired or under replaced terms: invalid_grant
        if not tokens.claim_refresh(row):
            tokens.revoke_family(row.family_id, "refresh_reuse", resident_id=row.resident_id,
                                 client_id=client.id, company_id=client.company_id)
            record(AuditTag.REFRESH_REUSE, resident_id=row.resident_id, client_id=client.id,
                   company_id=client.company_id, family=row.family_id, concurrent=True)
            return None
        return row

    def authenticate_user(self, refresh_token) -> Principal | None:
        resident = refresh_token.resident
        if resident is None:
            return None
        return Principal(resident, refresh_token.subject, self.request.client,
                         claims=refresh_token.claims, consented=self._consented)

    def revoke_old_credential(self, refresh_token) -> None:
        """Already done: the old refresh token was marked used when it was claimed."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_requested_scope(self):
        scope = self.request.payload.scope
        # Scopes about a resident make no sense without one (idp.scopes).
        about_resident = sorted(s for s in set(scope_to_list(scope or ""))
                                if scopes.is_about_resident(s))
        if about_resident:
            raise InvalidScopeError(
                "Scopes about a resident cannot be requested with client_credentials: "
                + " ".join(about_resident)
            )
        super().validate_requested_scope()
        if scope and self.request.client.get_allowed_scope(scope) is None:
            raise InvalidScopeError("The client is not registered for the requested scope.")
