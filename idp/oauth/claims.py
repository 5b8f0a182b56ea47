"""Scope → claims. Pure functions: what a resident's data looks like to a client.

Which claims each scope releases is the scope registry's (``idp.scopes``); the
values, read from the resident, are here:

- ``name``        name, family_name, given_name, family_name#ja-Kana-JP, given_name#ja-Kana-JP
- ``birth_year``  birthdate as "YYYY" (OIDC Core §5.1 allows a year alone)
- ``gender``      gender
- ``email``       email, email_verified
- ``postal_code`` address {postal_code, locality} (no street address, by the draft terms)
- ``registered:<category>``  registered_data {<category>: {value, sources}}, from
                  ``idp.exchange.release`` (it reads data links and contracts, so
                  ``idp.oauth.oidc.release`` adds it, not this module)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from idp.accounts.service import full_name

# The marker in AuthorizationCode.claims of a request whose ID token must carry auth_time.
AUTH_TIME = "auth_time"
# The marker of a request whose ID token must carry registered_data (the values of
# the registered:<category> scopes consented to, idp.exchange.release); UserInfo
# carries it whenever the scopes are covered.
REGISTERED_DATA = "registered_data"

def claims_for(resident: Any, scopes: set[str] | list[str], sub: str) -> dict[str, Any]:
    """The claims released for these scopes; empty values are left out (OIDC Core §5.3.2)."""
    scopes = set(scopes)
    claims: dict[str, Any] = {"sub": sub}
    if "name" in scopes:
        claims.update({
            "name": full_name(resident.family_name, resident.given_name),
            "family_name": resident.family_name,
            "given_name": resident.given_name,
            "family_name#ja-Kana-JP": resident.family_name_kana,
            "given_name#ja-Kana-JP": resident.given_name_kana,
        })
    if "birth_year" in scopes and resident.birth_year is not None:
        claims["birthdate"] = f"{resident.birth_year:04d}"
    if "gender" in scopes:
        claims["gender"] = resident.gender
    if "email" in scopes:
        claims["email"] = resident.email
        claims["email_verified"] = bool(resident.email_verified)
    if "postal_code" in scopes:
        address = {"postal_code": resident.postal_code, "locality": resident.locality}
        address = {k: v for k, v in address.items() if v}
        if address:
            claims["address"] = address
    return {k: v for k, v in claims.items() if v is not None and v != ""}


def released_claim_names(claims: dict[str, Any]) -> list[str]:
    return sorted(k for k in claims if k != "sub")



def auth_time_requested(params: Mapping[str, Any]) -> bool:
    """Whether an authorization request needs ``auth_time`` in its ID token.

    OIDC Core §2: REQUIRED when ``max_age`` was sent or ``auth_time`` was asked
    for in the ``id_token`` member of the ``claims`` parameter, OPTIONAL
    otherwise. We leave it out otherwise: the sign-in time of a browser session
    is the same at every company that session signs in to, hours apart, so two
    companies could join their records on it (docs/security.md, unlinkability).
    """
    if params.get("max_age") not in (None, ""):
        return True
    return id_token_requested(params, AUTH_TIME)


def id_token_requested(params: Mapping[str, Any], name: str) -> bool:
    """Whether the ``id_token`` member of the ``claims`` parameter (OIDC Core §5.5)
    names the claim ``name`` (``{"id_token": {"registered_data": null}}``)."""
    raw = params.get("claims")
    if not isinstance(raw, str) or not raw:
        return False
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    member = value.get("id_token") if isinstance(value, dict) else None
    return isinstance(member, dict) and name in member
