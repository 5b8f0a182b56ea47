"""Account lockout: too many failures within a window, and the account waits.

Residents' second factor (``idp.accounts.totp``: 10 wrong codes in 15
minutes) and admins' sign-in and re-authentication (``idp.admin.auth``: 5
failures in 15 minutes) lock the same way: once ``max_failures`` failures are
younger than ``window``, every attempt is refused unchecked until the oldest
of them ages out. Failures are counted server-side by the caller — from the
audit trail, where each failure is written anyway — so a replayed cookie or a
new browser cannot reset the count.

The password step of a resident's sign-in is slowed, not locked
(``idp.security.throttle``): its counts are kept per address, known or not,
so they cannot tell anyone whether an account exists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from idp.db import utcnow


@dataclass(frozen=True)
class Lockout:
    max_failures: int
    window: dt.timedelta

    def locked(self, failures_since: Callable[[dt.datetime], int]) -> bool:
        """Whether the account is locked, given how to count its failures since a time."""
        return failures_since(utcnow() - self.window) >= self.max_failures
