"""Random identifiers and digests for bearer secrets.

Codes, tokens and client secrets are high-entropy values we generate; they are
stored only as SHA-256 digests and looked up by digest (fosite's HMAC strategy,
STYLE rule 6). A slow hash is for low-entropy passwords only
(see ``idp.accounts.passwords``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# Crockford base32: no I, L, O, U, so IDs read aloud or typed survive.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def token(nbytes: int = 32) -> str:
    """A URL-safe random secret with ``nbytes`` of entropy."""
    return secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    """Hex SHA-256 of a high-entropy secret, the form it is stored in."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def matches(value: str, stored_digest: str | None) -> bool:
    """Constant-time comparison of a presented secret with a stored digest."""
    if not stored_digest:
        return False
    return hmac.compare_digest(digest(value), stored_digest)


def random_id(length: int = 16, prefix: str = "") -> str:
    """A random, non-sequential identifier in Crockford base32."""
    return prefix + "".join(secrets.choice(CROCKFORD) for _ in range(length))
