"""Login throttling per account: growing delays, never a permanent lockout.

After ``FREE_FAILURES`` wrong passwords for one email address within
``WINDOW`` seconds, each further failure makes that address wait
2, 4, 8 … seconds (at most ``MAX_DELAY``) before the next attempt is even
checked. A success clears the count. The owner is slowed, never locked out
for good, and the counting is the same for addresses that have no account,
so a 429 tells nobody whether an account exists.

This is the residents' password step (``idp.interaction``); an account's
failures that do lock it — a resident's wrong second-factor codes, an admin's
sign-ins — are counted by ``idp.security.lockout``.

Counts live in the rate limiter's storage: Redis when ``IDP_REDIS_URL`` is
set (shared by every worker and node; this process's memory while Redis is
unreachable, idp.limiter_storage), memory otherwise.
"""

from __future__ import annotations

import hashlib
import time

from idp.extensions import limiter

FREE_FAILURES = 3
MAX_DELAY = 300
WINDOW = 3600


def _key(email: str) -> str:
    digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:32]
    return f"machi-id/login-failures/{digest}"


def retry_after(email: str) -> int | None:
    """Seconds this address must still wait, or None if it may try now."""
    block = _key(email) + "/block"
    storage = limiter.storage
    if storage.get(block) <= 0:
        return None
    remaining = storage.get_expiry(block) - time.time()
    return max(1, int(remaining + 0.999)) if remaining > 0 else None


def failed(email: str) -> int:
    """Count a failure; returns the delay now imposed (0 while failures are free)."""
    storage = limiter.storage
    count = storage.incr(_key(email), WINDOW)
    if count <= FREE_FAILURES:
        return 0
    delay = min(2 ** (count - FREE_FAILURES), MAX_DELAY)
    block = _key(email) + "/block"
    storage.clear(block)
    storage.incr(block, delay)
    return delay


def succeeded(email: str) -> None:
    storage = limiter.storage
    storage.clear(_key(email))
    storage.clear(_key(email) + "/block")
