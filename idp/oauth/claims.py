"""Scope → claims. Pure functions: what a resident's data looks like to a client.

Which claims each scope releases is the scope registry's (``idp.scopes``,
``Scope.claims``): ``claims_for`` walks it. How each claim's value is read from
the resident is here (``VALUES``):

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
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from idp import scopes as registry
from idp.accounts.service import full_name

# The marker in AuthorizationCode.claims of a request whose ID token must carry auth_time.
AUTH_TIME = "auth_time"
# The marker of a request whose ID token must carry registered_data (the values of
# the registered:<category> scopes consented to, idp.exchange.release); UserInfo
# carries it whenever the scopes are covered.
REGISTERED_DATA = "registered_data"

def _birthdate(resident: Any) -> str | None:
    return f"{resident.birth_year:04d}" if resident.birth_year is not None else None


def _address(resident: Any) -> dict[str, str] | None:
    address = {"postal_code": resident.postal_code, "locality": resident.locality}
    return {k: v for k, v in address.items() if v} or None


# How each claim the registry names (``Scope.claims``) is read from a resident. A new
# claim in the registry needs its reader here; tests/unit/test_scopes.py fails until it
# has one, rather than a resident's first request.
VALUES: dict[str, Callable[[Any], Any]] = {
    "name": lambda r: full_name(r.family_name, r.given_name),
    "family_name": lambda r: r.family_name,
    "given_name": lambda r: r.given_name,
    "family_name#ja-Kana-JP": lambda r: r.family_name_kana,
    "given_name#ja-Kana-JP": lambda r: r.given_name_kana,
    "birthdate": _birthdate,
    "gender": lambda r: r.gender,
    "email": lambda r: r.email,
    "email_verified": lambda r: bool(r.email_verified),
    "address": _address,
}


# The resident's fields ``VALUES`` reads, and no other: UserInfo beneath Flask reads just
# these along with the token (``idp.oauth.tokens.resident_state_lookup``).
RESIDENT_FIELDS = ("family_name", "given_name", "family_name_kana", "given_name_kana",
                   "birth_year", "gender", "email", "email_verified", "postal_code", "locality")


def claims_for(resident: Any, scopes: set[str] | list[str], sub: str) -> dict[str, Any]:
    """The claims the registry names for these scopes, read from the resident; empty
    values are left out (OIDC Core §5.3.2). ``sub`` is the pairwise subject."""
    scopes = set(scopes)
    claims: dict[str, Any] = {"sub": sub}
    for scope, names in registry.claims().items():
        if scope in scopes:
            claims.update({name: VALUES[name](resident) for name in names if name != "sub"})
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
