"""Companies and clients: admission, contracts, registration, changes, suspension,
reinstatement and revocation.

Cutting a company or a client off is immediate and complete
(``idp.access.service.revoke_grants``): every token is revoked, pending
authorization codes expire, and clients that registered a back-channel logout
URI are told about each live session once the change commits; so are they when
an edit narrows a client (``narrow_grants``) or a leaked secret is rotated with
its tokens revoked. Token checks
also look at the client's and company's state, so nothing works in between.
Reinstating a suspended company brings back client authentication and the
residents' consents, never a token revoked by the suspension.

Every refusal raises ``ClientError`` with a message for the operator; the
caller rolls back, so a refused action changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func
from sqlalchemy import select

from idp import secrets
from idp.access import epoch
from idp.access import service as access
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients import cache
from idp.clients import validation
from idp.clients.models import Client
from idp.clients.models import Company
from idp.clients.models import CompanyContract
from idp.clients.models import CompanyStatus
from idp.clients.validation import AUTH_METHODS
from idp.clients.validation import DEVICE_CODE
from idp.clients.validation import GRANT_TYPES
from idp.clients.validation import SCOPES
from idp.clients.validation import ClientError
from idp.clients.validation import ClientSettings
from idp.db import utcnow
from idp.extensions import db
from idp.security.algorithms import SIGNING_ALGS

# Re-exported: callers use service.ClientError, service.SCOPES …
__all__ = ["AUTH_METHODS", "DEVICE_CODE", "GRANT_TYPES", "SCOPES", "ClientError", "ClientSettings"]

def create_company(name: str, actor: str | None = None) -> Company:
    name = validation.name(name, "company")
    company = Company(name=name)
    db.session.add(company)
    db.session.flush()
    record(AuditTag.COMPANY_CREATE, actor=actor, company_id=company.id, name=name)
    return company


def find_company(company_id) -> Company | None:
    """The company with this id, whatever its state; None for unknown ids and junk."""
    return db.session.get(Company, company_id) if _plausible_id(company_id, 16) else None


def get_company(company_id: str) -> Company:
    company = find_company(company_id)
    if company is None:
        raise ClientError(f"no company {company_id}")
    return company


def _plausible_id(value, length: int) -> bool:
    """A string that could be one of our ids: short, printable ASCII (PostgreSQL refuses
    NUL in text, so junk must never reach a query)."""
    return isinstance(value, str) and 0 < len(value) <= length and value.isascii() \
        and value.isprintable()


def find_client(client_id) -> Client | None:
    """The client with this id, whatever its state; None for unknown ids and junk."""
    return db.session.get(Client, client_id) if _plausible_id(client_id, 40) else None


def list_companies() -> list[Company]:
    return list(db.session.scalars(select(Company).order_by(Company.created_at, Company.id)))


def update_company(company_id: str, name: str, actor: str | None = None) -> Company:
    """Rename a company (residents see the new name on the consent screen at once)."""
    company = get_company(company_id)
    if company.status == CompanyStatus.REVOKED:
        raise ClientError(f"company {company.id} is revoked and can no longer be changed")
    name = validation.name(name, "company")
    if name != company.name:
        record(AuditTag.COMPANY_UPDATE, actor=actor, company_id=company.id,
               previous={"name": company.name}, name=name)
        company.name = name
        epoch.bump("company_update")
    return company


CONTRACT_REFERENCE = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")
CONTRACT_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$")


def record_contract(company_id: str, reference: str, version: str, signed_on: dt.date,
                    actor: str | None = None) -> CompanyContract:
    """Record the data-use contract the company signed (a renewal adds a row)."""
    company = get_company(company_id)
    if company.status == CompanyStatus.REVOKED:
        raise ClientError(f"company {company.id} is revoked and can no longer be changed")
    reference = (reference or "").strip()
    if not CONTRACT_REFERENCE.match(reference):
        raise ClientError("contract reference must be 1 to 100 printable characters")
    version = (version or "").strip()
    if not CONTRACT_VERSION.match(version):
        raise ClientError("contract version must be 1 to 40 letters, digits, '.', '_' or '-'")
    if not isinstance(signed_on, dt.date) or isinstance(signed_on, dt.datetime):
        raise ClientError("contract signing date must be a date")
    if signed_on > utcnow().date() + dt.timedelta(days=1):
        raise ClientError("contract signing date is in the future")
    if any(c.reference == reference and c.version == version for c in company.contracts):
        raise ClientError(f"contract {reference} version {version} is already recorded")
    contract = CompanyContract(company=company, reference=reference, version=version,
                               signed_on=signed_on, recorded_by=actor)
    db.session.add(contract)
    db.session.flush()
    db.session.refresh(company, ["contracts"])
    record(AuditTag.CONTRACT_RECORD, actor=actor, company_id=company.id, reference=reference,
           version=version, signed_on=signed_on.isoformat())
    return contract


def suspend_company(company_id: str, actor: str | None = None) -> Company:
    """Cut the company off now: its clients stop authenticating and every token dies."""
    company = get_company(company_id)
    if company.status == CompanyStatus.REVOKED:
        raise ClientError(f"company {company.id} is revoked")
    if company.status != CompanyStatus.SUSPENDED:
        company.status = CompanyStatus.SUSPENDED
        company.suspended_at = utcnow()
        access.revoke_grants(company=company, reason="company_suspended")
        epoch.bump("company_suspended")
        record(AuditTag.COMPANY_SUSPEND, actor=actor, company_id=company.id)
    return company


def reinstate_company(company_id: str, actor: str | None = None) -> Company:
    """Lift a suspension: clients authenticate again and consents in force count again.

    Tokens and codes the suspension revoked stay revoked; the company's
    services ask residents to sign in again.
    """
    company = get_company(company_id)
    if company.status == CompanyStatus.REVOKED:
        raise ClientError(f"company {company.id} is revoked for good and cannot be reinstated")
    if company.status != CompanyStatus.SUSPENDED:
        raise ClientError(f"company {company.id} is not suspended")
    suspended_at = company.suspended_at
    company.status = CompanyStatus.ACTIVE
    company.suspended_at = None
    # Device authorizations started before the suspension must not be
    # completed now: the kiosk starts again.
    expired = access.expire_device_codes(c.id for c in company.clients)
    epoch.bump("company_reinstated")
    record(AuditTag.COMPANY_REINSTATE, actor=actor, company_id=company.id,
           suspended_at=suspended_at.isoformat() if suspended_at else None,
           device_codes_expired=expired)
    return company


def revoke_company(company_id: str, actor: str | None = None) -> Company:
    """Exclude the company for good (不適切な企業の排除): it is cut off like a
    suspension, every client is revoked, and nothing can bring it back."""
    company = get_company(company_id)
    if company.status == CompanyStatus.REVOKED:
        raise ClientError(f"company {company.id} is already revoked")
    now = utcnow()
    was = company.status
    company.status = CompanyStatus.REVOKED
    company.revoked_at = now
    # Already cut off if the company was suspended; the notices went then.
    access.revoke_grants(company=company, reason="company_revoked",
                         notify=was == CompanyStatus.ACTIVE)
    for client in company.clients:
        if client.revoked_at is None:
            client.revoked_at = now
    epoch.bump("company_revoked")
    record(AuditTag.COMPANY_REVOKE, actor=actor, company_id=company.id, previous_status=was,
           clients=sorted(c.id for c in company.clients))
    return company


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
    client_uri: str | None = None,
    policy_uri: str | None = None,
    tos_uri: str | None = None,
    token_endpoint_auth_method: str | None = None,
    jwks: dict | None = None,
    id_token_signed_response_alg: str | None = None,
    backchannel_logout_uri: str | None = None,
    event_receiver_uri: str | None = None,
    verified_claims_allowed: bool = False,
    actor: str | None = None,
) -> tuple[Client, str | None]:
    """Register a client; returns it and its secret (None for public clients).

    The secret is shown once: only its digest is stored.
    """
    company = get_company(company_id)
    if not company.is_active:
        raise ClientError(f"company {company_id} is {company.status}")
    checked = validation.checked(ClientSettings(
        name=name, redirect_uris=list(redirect_uris or []),
        post_logout_redirect_uris=list(post_logout_redirect_uris or []),
        grant_types=list(grant_types or []), scopes=list(scopes or []), purpose=purpose,
        purpose_en=purpose_en, client_uri=client_uri, policy_uri=policy_uri, tos_uri=tos_uri,
        backchannel_logout_uri=backchannel_logout_uri, event_receiver_uri=event_receiver_uri,
        verified_claims_allowed=verified_claims_allowed), public)
    validation.check_contracts(company_id, checked.scopes)
    method = token_endpoint_auth_method or ("none" if public else "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ClientError(f"unsupported token endpoint auth method: {method}")
    if public != (method == "none"):
        raise ClientError("public clients use 'none'; confidential clients must authenticate")
    if method == "private_key_jwt" and not (jwks and jwks.get("keys")):
        raise ClientError("private_key_jwt needs the client's public keys (jwks)")
    if id_token_signed_response_alg and id_token_signed_response_alg not in SIGNING_ALGS:
        raise ClientError("id_token_signed_response_alg must be " + " or ".join(SIGNING_ALGS))
    secret = None if method in ("none", "private_key_jwt") else secrets.token(32)
    client = Client(
        id=secrets.random_id(20, "mc_"),
        company=company,
        is_public=public,
        secret_digest=secrets.digest(secret) if secret else None,
        token_endpoint_auth_method=method,
        jwks=jwks,
        id_token_signed_response_alg=id_token_signed_response_alg,
        **vars(checked),
    )
    db.session.add(client)
    db.session.flush()
    record(AuditTag.CLIENT_CREATE, actor=actor, client_id=client.id, company_id=company.id,
           grant_types=checked.grant_types, scopes=checked.scopes)
    return client, secret


def get_client(client_id: str) -> Client:
    client = find_client(client_id)
    if client is None:
        raise ClientError(f"no client {client_id}")
    return client


def list_clients(company_id: str | None = None) -> list[Client]:
    query = select(Client).order_by(Client.created_at, Client.id)
    if company_id:
        query = query.where(Client.company_id == company_id)
    return list(db.session.scalars(query))


def settings_of(client: Client) -> ClientSettings:
    return ClientSettings(
        name=client.name, redirect_uris=list(client.redirect_uris),
        post_logout_redirect_uris=list(client.post_logout_redirect_uris),
        grant_types=list(client.grant_types), scopes=list(client.scopes),
        purpose=client.purpose, purpose_en=client.purpose_en, client_uri=client.client_uri,
        policy_uri=client.policy_uri,
        tos_uri=client.tos_uri, backchannel_logout_uri=client.backchannel_logout_uri,
        event_receiver_uri=client.event_receiver_uri,
        verified_claims_allowed=client.verified_claims_allowed)


def editable_client(client_id: str) -> Client:
    """The client, if it may still be changed (not revoked, nor its company)."""
    client = get_client(client_id)
    if client.revoked_at is not None:
        raise ClientError(f"client {client.id} is revoked and can no longer be changed")
    if client.company.status == CompanyStatus.REVOKED:
        raise ClientError(f"company {client.company_id} is revoked")
    return client


def update_client(client_id: str, settings: ClientSettings,
                  actor: str | None = None) -> tuple[Client, dict]:
    """Change a client's settings; returns it and what changed ({field: [old, new]}).

    Taking something away takes effect at once: tokens carrying a scope that
    was removed are revoked, and pending codes for a removed scope or
    redirect URI, or of a removed grant type, expire.
    """
    client = editable_client(client_id)
    before = settings_of(client)
    after = validation.checked(settings, client.is_public)
    validation.check_contracts(client.company_id,
                               [s for s in after.scopes if s not in before.scopes])
    changes = {key: [getattr(before, key), getattr(after, key)] for key in vars(after)
               if getattr(before, key) != getattr(after, key)}
    if not changes:
        return client, {}
    for key, (_old, new) in changes.items():
        setattr(client, key, new)
    epoch.bump("client_update")
    removed_scopes = set(before.scopes) - set(after.scopes)
    removed_uris = set(before.redirect_uris) - set(after.redirect_uris)
    removed_grants = set(before.grant_types) - set(after.grant_types)
    # Withdraw what the edit took away (the sessions of revoked tokens are told).
    revoked = access.narrow_grants(
        client, scopes=removed_scopes, redirect_uris=removed_uris,
        code_flow="authorization_code" in removed_grants,
        device_flow=DEVICE_CODE in removed_grants)
    record(AuditTag.CLIENT_UPDATE, actor=actor, client_id=client.id,
           company_id=client.company_id, changes=changes, tokens_revoked=revoked)
    return client, changes


def rotate_secret(client_id: str, revoke_tokens: bool = False,
                  actor: str | None = None) -> tuple[Client, str]:
    """A new client secret, shown once; the old one stops working at once.

    ``revoke_tokens`` also revokes every token of the client and expires its
    unredeemed codes (the old secret leaked: whoever held it may have obtained
    tokens), telling the client's sessions by logout token like any cut-off.
    """
    client = editable_client(client_id)
    if client.token_endpoint_auth_method not in ("client_secret_basic", "client_secret_post"):
        raise ClientError(f"client {client.id} authenticates with "
                          f"{client.token_endpoint_auth_method} and has no secret")
    secret = secrets.token(32)
    client.secret_digest = secrets.digest(secret)
    epoch.bump("client_secret_rotated")
    revoked = 0
    if revoke_tokens:
        # A suspended company's clients were cut off, and told, at the suspension.
        revoked = access.revoke_grants(client=client, reason="client_secret_rotated",
                                       notify=client.is_active)["tokens_revoked"]
    record(AuditTag.CLIENT_SECRET_ROTATE, actor=actor, client_id=client.id,
           company_id=client.company_id, tokens_revoked=revoked)
    return client, secret


def revoke_client(client_id: str, actor: str | None = None) -> Client:
    """Revoke for good: authentication fails and every token and code dies now."""
    client = get_client(client_id)
    if client.revoked_at is None:
        access.revoke_grants(client=client, reason="client_revoked", notify=client.is_active)
        client.revoked_at = utcnow()
        epoch.bump("client_revoked")
        record(AuditTag.CLIENT_REVOKE, actor=actor, client_id=client.id,
               company_id=client.company_id)
    return client


def counts_by_company() -> dict[str, dict[str, int]]:
    """{company_id: {"clients": n, "active_clients": m}} for the console's lists."""
    rows = db.session.execute(
        select(Client.company_id, func.count(), func.count(Client.revoked_at))
        .group_by(Client.company_id)).all()
    return {company_id: {"clients": total, "active_clients": total - revoked}
            for company_id, total, revoked in rows}


def known_client(client_id) -> Client | None:
    """As ``find_client``, from this process's cache, which the revocation epoch keeps
    exact (``idp.clients.cache``): every change below bumps it in its transaction. For
    reading (the authorization endpoint's checks), never for a change."""
    return cache.client(client_id) if _plausible_id(client_id, 40) else None


def active_client(client_id: str | None) -> Client | None:
    """The client if it exists and may act now, else None (Authlib's query_client),
    from this process's cache (``known_client``)."""
    client = known_client(client_id)
    if client is None or not client.is_active:
        return None
    return client
