"""What a client may be: the settings an admin sets, and their validation.

Pure functions and constants, shared by registration and later changes
(``idp.clients.service``), the CLI and the console. ``ClientError`` carries a
message for the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from idp import scopes as registry

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", DEVICE_CODE)
# The scopes a client may be registered for (idp.scopes, the registry); a family's
# scopes (``registered:<category>`` …) are checked with ``registry.known``.
SCOPES = registry.registrable()
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")


class ClientError(ValueError):
    """Invalid company or client data; the message says what is wrong."""


def name(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > 200:
        raise ClientError(f"{what} name must be 1 to 200 characters")
    return value


def validate_uri(uri: str, what: str = "redirect URI") -> None:
    """https, or http on a loopback host; no fragment (RFC 9700 §4.1.3, OIDC BCL §2.2;
    RFC 8935 §2 for an event receiver, which must be TLS-protected)."""
    if not isinstance(uri, str) or not uri or len(uri) > 500 or any(c.isspace() for c in uri):
        raise ClientError(f"{what} must be an absolute URL of at most 500 characters: {uri}")
    parts = urlsplit(uri)
    if parts.fragment or uri.endswith("#"):
        raise ClientError(f"{what} must not have a fragment: {uri}")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost"):
        return
    raise ClientError(f"{what} must be https (http only on loopback): {uri}")


def _optional_uri(uri: str | None, what: str) -> str | None:
    uri = (uri or "").strip() or None
    if uri is not None:
        validate_uri(uri, what)
    return uri


@dataclass
class ClientSettings:
    """What an admin may set on a client, at registration and later.

    Public or confidential, the authentication method and the keys are fixed
    at registration (register a new client to change them).
    """

    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    scopes: list[str]
    purpose: str = ""
    purpose_en: str = ""
    client_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    backchannel_logout_uri: str | None = None
    event_receiver_uri: str | None = None
    verified_claims_allowed: bool = False


def check_contracts(company_id: str, scopes: list[str]) -> None:
    """A family's scope (``contribute:<category>``, ``registered:<category>``) only while
    a data-use contract of the company in force names the category (``registry.refusal``)."""
    for scope in scopes:
        reason = registry.refusal(company_id, scope)
        if reason is not None:
            raise ClientError(f"scope {scope} refused: {reason}")


def check_no_kiosk_refresh(grant_types: list[str], scopes: list[str]) -> None:
    """A device-flow (kiosk) client never gets a refresh token: a resident's session at a
    kiosk ends at ``kiosk_max_session`` whatever the vendor's kiosk does, and a refresh
    would start a new access token past it (docs/kiosk.md §6)."""
    if DEVICE_CODE not in grant_types:
        return
    if "refresh_token" in grant_types:
        raise ClientError("a kiosk client (device_code grant) cannot have the refresh_token "
                          "grant: a resident's session at a kiosk ends at kiosk_max_session")
    if "offline_access" in scopes:
        raise ClientError("a kiosk client (device_code grant) cannot have the offline_access "
                          "scope: a resident's session at a kiosk ends at kiosk_max_session")


def checked(settings: ClientSettings, public: bool) -> ClientSettings:
    client_name = name(settings.name, "client")
    grant_types = list(dict.fromkeys(settings.grant_types or ["authorization_code"]))
    for grant in grant_types:
        if grant not in GRANT_TYPES:
            raise ClientError(f"unsupported grant type: {grant}")
    scopes = list(dict.fromkeys(settings.scopes or ["openid"]))
    for scope in scopes:
        if not registry.known(scope):
            raise ClientError(f"unknown scope: {scope}")
    redirect_uris = list(dict.fromkeys(u.strip() for u in settings.redirect_uris or []))
    post_logout = list(dict.fromkeys(u.strip() for u in settings.post_logout_redirect_uris or []))
    for uri in redirect_uris + post_logout:
        validate_uri(uri)
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientError("the authorization_code grant needs at least one --redirect-uri")
    if public and "client_credentials" in grant_types:
        raise ClientError("a public client cannot use client_credentials")
    check_no_kiosk_refresh(grant_types, scopes)
    for text, what in ((settings.purpose, "purpose"), (settings.purpose_en, "purpose_en")):
        if len(text or "") > 2000:
            raise ClientError(f"{what} must be at most 2000 characters")
    return ClientSettings(
        name=client_name, redirect_uris=redirect_uris, post_logout_redirect_uris=post_logout,
        grant_types=grant_types, scopes=scopes, purpose=(settings.purpose or "").strip(),
        purpose_en=(settings.purpose_en or "").strip(),
        client_uri=_optional_uri(settings.client_uri, "client URI"),
        policy_uri=_optional_uri(settings.policy_uri, "policy URI"),
        tos_uri=_optional_uri(settings.tos_uri, "terms URI"),
        backchannel_logout_uri=_optional_uri(settings.backchannel_logout_uri,
                                             "back-channel logout URI"),
        event_receiver_uri=_optional_uri(settings.event_receiver_uri, "event receiver URI"),
        verified_claims_allowed=bool(settings.verified_claims_allowed),
    )
