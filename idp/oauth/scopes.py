"""The standard OpenID Connect scopes, as our finer consent items (OIDC Core §5.4).

Relying-party software asks for ``profile`` and ``address`` by default
(mod_auth_openidc: ``openid profile email``). We keep one scope per consent
item so a resident can untick each, and read a standard scope as the finer
scopes it covers. ``expand`` is applied where a request's ``scope`` is read
(``server.OAuthRequest``), so everything after it (client checks, consent,
codes, tokens, release) sees only our own scopes, and the token response's
``scope`` tells the client what was granted (RFC 6749 §3.3).

- ``profile``  name (with reading), birth year, gender; the other profile
               claims (nickname, picture, website, zoneinfo, …) are not held,
               so they are never released
- ``email``    is our own scope already
- ``address``  postal code and municipality (never a street address)
- ``phone``    not supported: residents have no phone number here, so it
               stays an unknown scope and is not advertised
"""

from __future__ import annotations

from collections.abc import Collection

from authlib.oauth2.rfc6749 import list_to_scope
from authlib.oauth2.rfc6749 import scope_to_list

STANDARD_SCOPES: dict[str, tuple[str, ...]] = {
    "profile": ("name", "birth_year", "gender"),
    "address": ("postal_code",),
}


def expand(scope: str | None, allowed: Collection[str] | None = None) -> str | None:
    """The scope with each standard scope replaced by the finer scopes it covers.

    With ``allowed`` (the client's registered scopes), a standard scope covers
    only those of its finer scopes the client is registered for: a client
    registered for ``name`` may ask ``profile`` and gets ``name``. Scopes the
    client names itself are left for the client check to accept or refuse.
    Order is kept and duplicates dropped; ``None`` stays ``None``.
    """
    if scope is None:
        return None
    expanded: list[str] = []
    for item in scope_to_list(scope):
        if item in STANDARD_SCOPES:
            expanded.extend(s for s in STANDARD_SCOPES[item] if allowed is None or s in allowed)
        else:
            expanded.append(item)
    return list_to_scope(list(dict.fromkeys(expanded)))
