"""Rate-limit storage that degrades instead of failing: Redis behind a circuit breaker.

Counters live in Redis so that every worker and node counts together. When
Redis is down or frozen, a request must still get its normal answer, at once:
never a 500, never a thread held for seconds (issue 12, item 9). So:

* every Redis call has short connect and read timeouts (``redis_timeout_ms``)
  and no retries (redis-py's default is ten, with backoff, and no read timeout
  at all: a frozen Redis held each thread until TCP gave up);
* a circuit breaker (pybreaker, "Release It!") opens after ``FAIL_MAX``
  consecutive failures: for ``redis_cooldown`` seconds no call goes to Redis;
  then the next call probes it (half-open), success closes the breaker, failure
  opens it for another cool-down;
* meanwhile counters live in this process's memory (limits' MemoryStorage), so
  every limit still holds, per process, as it does without ``redis_url``. Counts
  do not move between the two stores: a switch starts the windows afresh;
* each change of state is logged once (WARNING when Redis is given up, INFO when
  it is back or still down after a probe), never a traceback per request.

Why not flask-limiter's own ``in_memory_fallback_enabled``: it probes the dead
storage from its ``before_request`` hook on every request, discovery and JWKS
included; it does not cover storage used directly (``idp.security.throttle``)
nor deductions made after the view (``deduct_when``), which then raise; and it
leaves the timeouts to redis-py's defaults.

The scheme ``failsafe+redis://…`` (also ``failsafe+rediss``, ``failsafe+redis+unix``)
selects this storage; the app factory builds it from ``redis_url``.
"""

from __future__ import annotations

import logging
from typing import Any

import pybreaker
from limits.storage import MemoryStorage
from limits.storage import RedisStorage
from limits.storage import Storage
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from idp.config import REDIS_SCHEMES

log = logging.getLogger(__name__)

PREFIX = "failsafe+"
FAIL_MAX = 3


def storage_uri(redis_url: str) -> str:
    """The flask-limiter storage URI for ``redis_url``."""
    return PREFIX + redis_url


def storage_options(timeout_ms: int, cooldown: int) -> dict[str, Any]:
    """RATELIMIT_STORAGE_OPTIONS for :class:`FailsafeRedisStorage`."""
    return {"socket_timeout": timeout_ms / 1000, "socket_connect_timeout": timeout_ms / 1000,
            "cooldown": cooldown}


class _Transitions(pybreaker.CircuitBreakerListener):
    """Logs each change of the breaker's state once, with the failure that caused it."""

    def __init__(self) -> None:
        self.last_failure = ""

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        self.last_failure = f"{type(exc).__name__}: {exc}"[:200]

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        old = getattr(old_state, "name", None)
        new = new_state.name
        if new == pybreaker.STATE_OPEN and old == pybreaker.STATE_HALF_OPEN:
            log.info("Redis still unreachable (%s); rate limits go on counting in this "
                     "process's memory for %s s", self.last_failure, cb.reset_timeout)
        elif new == pybreaker.STATE_OPEN:
            log.warning("Redis unreachable (%s): rate limits now count in this process's "
                        "memory, not across workers and nodes; next try in %s s",
                        self.last_failure, cb.reset_timeout)
        elif new == pybreaker.STATE_CLOSED and old == pybreaker.STATE_HALF_OPEN:
            log.info("Redis reachable again: rate limits count across workers and nodes again")


class FailsafeRedisStorage(Storage):
    """A limits storage: Redis while it answers, this process's memory while it does not."""

    STORAGE_SCHEME = [PREFIX + scheme for scheme in REDIS_SCHEMES]

    def __init__(self, uri: str, wrap_exceptions: bool = False, cooldown: float = 30,
                 **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        options.setdefault("retry", Retry(NoBackoff(), 0))
        self.redis = RedisStorage(uri.removeprefix(PREFIX), **options)
        self.memory = MemoryStorage()
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=FAIL_MAX, reset_timeout=cooldown, listeners=[_Transitions()],
            name="redis rate limits")

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        # Nothing of Redis's escapes (it falls back); only our own bugs would.
        return ()

    def _call(self, method: str, *args: Any) -> Any:
        return self._either(getattr(self.redis, method), getattr(self.memory, method), *args)

    def _either(self, in_redis: Any, in_memory: Any, *args: Any) -> Any:
        try:
            return self.breaker.call(in_redis, *args)
        except (pybreaker.CircuitBreakerError, RedisError):
            # Open (or just opened), or a failure counted towards opening it.
            return in_memory(*args)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._call("incr", key, expiry, amount)

    def get(self, key: str) -> int:
        return self._call("get", key)

    def get_expiry(self, key: str) -> float:
        return self._call("get_expiry", key)

    def clear(self, key: str) -> None:
        return self._call("clear", key)

    def reset(self) -> int | None:
        return self._call("reset")

    def check(self) -> bool:
        """Whether the store in use answers (memory always does). RedisStorage.check
        swallows its errors, so the breaker is shown the ping itself."""
        return bool(self._either(lambda: self.redis.get_connection().ping(), self.memory.check))
