"""Companies and clients: admission, registration, suspension and revocation."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy import update

from idp import secrets
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.clients.models import Company
from idp.clients.models import CompanyStatus
from idp.db import utcnow
from idp.extensions import db
from idp.oauth.models import AuthorizationCode
from idp.oauth.models import Token

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", DEVICE_CODE)
SCOPES = ("openid", "name", "birth_year", "gender", "email", "postal_code",
          "offline_access", "touch_events")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
ID_TOKEN_ALGS = ("RS256", "ES256")


class ClientError(ValueError):
    """Invalid company or client data; the message says what is wrong."""


def create_company(name: str, actor: str | None = None) -> Company:
    name = name.strip()
    if not name or len(name) > 200:
        raise ClientError("company name must be 1 to 200 characters")
    company = Company(name=name)
    db.session.add(company)
    db.session.flush()
    record(AuditTag.COMPANY_CREATE, actor=actor, company_id=company.id, name=name)
    return company


def get_company(company_id: str) -> Company:
    company = db.session.get(Company, company_id)
    if company is None:
        raise ClientError(f"no company {company_id}")
    return company


def suspend_company(company_id: str, actor: str | None = None) -> Company:
    """Cut the company off now: its clients stop authenticating and every token dies."""
    company = get_company(company_id)
    if company.status == CompanyStatus.REVOKED:
        raise ClientError("company is revoked")
    if company.status != CompanyStatus.SUSPENDED:
        company.status = CompanyStatus.SUSPENDED
        company.suspended_at = utcnow()
        for client in company.clients:
            _cut_off(client.id)
        record(AuditTag.COMPANY_SUSPEND, actor=actor, company_id=company.id)
    return company


def _validate_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    if parts.fragment:
        raise ClientError(f"redirect URI must not have a fragment: {uri}")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost"):
        return
    raise ClientError(f"redirect URI must be https (http only on loopback): {uri}")


def register_client(
    company_id: str,
    name: str,
    *,
    redirect_uris: list[str] | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    public: bool = False,
    grant_types: list[str] | None = None,
    scopes: list[str] | None = None,
    purpose: str = "",
    purpose_en: str = "",
    policy_uri: str | None = None,
    tos_uri: str | None = None,
    token_endpoint_auth_method: str | None = None,
    jwks: dict | None = None,
    id_token_signed_response_alg: str | None = None,
    actor: str | None = None,
) -> tuple[Client, str | None]:
    """Register a client; returns it and its secret (None for public clients).

    The secret is shown once: only its digest is stored.
    """
    company = get_company(company_id)
    if not company.is_active:
        raise ClientError(f"company {company_id} is {company.status}")
    name = name.strip()
    if not name or len(name) > 200:
        raise ClientError("client name must be 1 to 200 characters")
    grant_types = list(dict.fromkeys(grant_types or ["authorization_code"]))
    for grant in grant_types:
        if grant not in GRANT_TYPES:
            raise ClientError(f"unsupported grant type: {grant}")
    scopes = list(dict.fromkeys(scopes or ["openid"]))
    for scope in scopes:
        if scope not in SCOPES:
            raise ClientError(f"unknown scope: {scope}")
    redirect_uris = list(dict.fromkeys(redirect_uris or []))
    for uri in redirect_uris + list(post_logout_redirect_uris or []):
        _validate_redirect_uri(uri)
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientError("the authorization_code grant needs at least one --redirect-uri")
    if public and "client_credentials" in grant_types:
        raise ClientError("a public client cannot use client_credentials")
    method = token_endpoint_auth_method or ("none" if public else "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ClientError(f"unsupported token endpoint auth method: {method}")
    if public != (method == "none"):
        raise ClientError("public clients use 'none'; confidential clients must authenticate")
    if method == "private_key_jwt" and not (jwks and jwks.get("keys")):
        raise ClientError("private_key_jwt needs the client's public keys (jwks)")
    if id_token_signed_response_alg and id_token_signed_response_alg not in ID_TOKEN_ALGS:
        raise ClientError("id_token_signed_response_alg must be RS256 or ES256")
    secret = None if method in ("none", "private_key_jwt") else secrets.token(32)
    client = Client(
        id=secrets.random_id(20, "mc_"),
        company=company,
        name=name,
        is_public=public,
        secret_digest=secrets.digest(secret) if secret else None,
        token_endpoint_auth_method=method,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=list(post_logout_redirect_uris or []),
        grant_types=grant_types,
        scopes=scopes,
        purpose=purpose,
        purpose_en=purpose_en,
        policy_uri=policy_uri,
        tos_uri=tos_uri,
        jwks=jwks,
        id_token_signed_response_alg=id_token_signed_response_alg,
    )
    db.session.add(client)
    db.session.flush()
    record(AuditTag.CLIENT_CREATE, actor=actor, client_id=client.id, company_id=company.id,
           grant_types=grant_types, scopes=scopes)
    return client, secret


def get_client(client_id: str) -> Client:
    client = db.session.get(Client, client_id)
    if client is None:
        raise ClientError(f"no client {client_id}")
    return client


def revoke_client(client_id: str, actor: str | None = None) -> Client:
    """Revoke for good: authentication fails and every token and code dies now."""
    client = get_client(client_id)
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        _cut_off(client.id)
        record(AuditTag.CLIENT_REVOKE, actor=actor, client_id=client.id,
               company_id=client.company_id)
    return client


def _cut_off(client_id: str) -> None:
    """Revoke the client's live tokens and expire its pending codes.

    Token checks also look at the client's state, so the cut-off holds even
    before this runs; writing it down means no token comes back if the
    company is later reinstated.
    """
    now = utcnow()
    db.session.execute(
        update(Token).where(Token.client_id == client_id, Token.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    db.session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.client_id == client_id, AuthorizationCode.used_at.is_(None))
        .values(expires_at=now)
    )


def active_client(client_id: str | None) -> Client | None:
    """The client if it exists and may act now, else None (Authlib's query_client)."""
    if not client_id or not isinstance(client_id, str) or len(client_id) > 40:
        return None
    client = db.session.scalar(select(Client).where(Client.id == client_id))
    if client is None or not client.is_active:
        return None
    return client
