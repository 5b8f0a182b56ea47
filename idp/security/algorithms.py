"""The JWS algorithms we sign with and accept (RFC 7518 §3), in one place.

We hold a signing key for each (``idp.keys``), so each is what an ID token
or a userinfo response may be signed with (a client picks one,
``id_token_signed_response_alg``; the operator's default is
``id_token_default_alg``), what a ``private_key_jwt`` client assertion and an
``id_token_hint`` may be signed with, and what discovery advertises
(``*_signing_alg_values_supported``). RS256 comes first: OIDC Core §15.1
requires it, and it is the default.
"""

from __future__ import annotations

SIGNING_ALGS: tuple[str, ...] = ("RS256", "ES256")
