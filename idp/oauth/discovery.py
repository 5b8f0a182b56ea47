"""OpenID Provider metadata (OIDC Discovery 1.0, RFC 8414), built from settings."""

from __future__ import annotations

import functools
import json
from typing import Any

from idp import scopes
from idp.clients.service import GRANT_TYPES
from idp.config import Settings
from idp.oauth import assurance
from idp.oauth.grants import ALL_AUTH_METHODS
from idp.oauth.grants import CONFIDENTIAL_AUTH_METHODS
from idp.security import algorithms
from idp.security import passkeys

SIGNING_ALGS = list(algorithms.SIGNING_ALGS)


def metadata(settings: Settings, family_scopes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The document for these settings; ``family_scopes`` are the scopes the scope
    families offer now (``registered:<category>`` …, read from the database by the view),
    listed after our fixed ones."""
    url = settings.endpoint
    fixed = scopes.supported(families=False)
    own = len(scopes.registrable())
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": url("/authorize"),
        "token_endpoint": url("/token"),
        "userinfo_endpoint": url("/userinfo"),
        "jwks_uri": url("/jwks.json"),
        "revocation_endpoint": url("/revoke"),
        "introspection_endpoint": url("/introspect"),
        "end_session_endpoint": url("/logout"),
        "device_authorization_endpoint": url("/device_authorization"),
        # Our own scopes, and the standard scopes read as them (idp.scopes).
        "scopes_supported": [*fixed[:own], *family_scopes, *fixed[own:]],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": SIGNING_ALGS,
        "token_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": scopes.supported_claims() + ["iss", "aud", "exp", "iat", "auth_time",
                                                  "nonce", "at_hash", "amr", "acr", "sid",
                                                  "verified_claims", "registered_data"],
        "claim_types_supported": ["normal"],
        # Used for verified_claims (idp.oauth.assurance) and registered_data in the ID
        # token (idp.oauth.claims); other members are ignored.
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login", "consent"],
        # OpenID Connect EAP ACR values: a passkey sign-in (docs/security.md, passkeys).
        "acr_values_supported": list(passkeys.ACR_VALUES),
        "ui_locales_supported": ["ja", "en"],
        "claims_locales_supported": ["ja", "ja-Kana-JP"],
        "authorization_response_iss_parameter_supported": True,
        # OIDC Back-Channel Logout 1.0 §2.1
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        **assurance.metadata(settings),
    }


@functools.lru_cache(maxsize=32)
def document(settings: Settings, family_scopes: tuple[str, ...] = ()) -> bytes:
    """The metadata as served, encoded once per settings object and list of the
    families' scopes.

    Settings never change while an app runs, and categories of registered data
    rarely do; building and encoding the document on every request was most of the
    endpoint's cost.
    """
    return json.dumps(metadata(settings, family_scopes), ensure_ascii=False, separators=(",", ":"),
                      sort_keys=True).encode("utf-8") + b"\n"
