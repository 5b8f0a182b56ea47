"""The token endpoint's rate limit: per client, on the id client authentication reads.

Client authentication is Authlib's: each method decodes its credentials (the
HTTP Basic username is form-urlencoded, RFC 6749 §2.3.1, so ``mc%5F…`` is
``mc_…``; a client assertion names its client in ``sub``, RFC 7523 §3) and
asks the server's ``query_client`` hook for that id. :func:`counted` wraps
that hook, so a token request counts against exactly the client the server
authenticates, whatever the method or spelling, and before the secret or the
assertion is checked (a wrong secret still counts). Parsing the credentials a
second time here, as this module once did, keyed ``mc%5F…`` and ``mc_…``
apart.

A registered, active client counts under its stored id; an id that names no
such client counts against the client's address, so made-up ids get no fresh
allowance each. A request that names no client at all never reaches the hook
and is refused without a database read (``invalid_client``).

Counts are settled with the shared storage (Redis in production) in batches. A
member company's backend asks for tokens all day; one storage round trip per
request was a tenth of a token request's CPU (docs/performance.md). Below
``BATCH_SHARE`` requests per window a limit is exact: every request is one hit.
From there, each worker counts in process and sends its count every
``amount // BATCH_SHARE`` requests (24 for the default 1200 per minute), so a
client gets at most that many requests minus one per worker beyond its limit,
2 % per worker. A refusal is remembered until the window's reset, and answered
without a round trip.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import limits
from flask import current_app
from flask import g
from flask import has_request_context
from flask import request
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import TooManyRequests

from idp import config
from idp.extensions import limiter

LIMITED_VIEW = "oauth.token"


def counted(query_client: Callable[[str], Any]) -> Callable[[str], Any]:
    """``query_client`` that also counts token requests against the client looked up."""

    def query(client_id: str) -> Any:
        client = query_client(client_id)
        if has_request_context() and request.endpoint == LIMITED_VIEW:
            count("client:" + client.client_id if client is not None
                  else "address:" + (get_remote_address() or "unknown"))
        return client

    return query


# In the WSGI environ: the keys a layer beneath Flask (idp.oauth.direct) already counted
# for this request, which then went on to Flask.
COUNTED = "idp.token_limit_counted"


def count(key: str) -> None:
    """One token request for ``key`` (once per request); TooManyRequests over the limit."""
    seen = g.get("idp_token_limit_keys")
    if seen is None:
        seen = g.idp_token_limit_keys = set(request.environ.get(COUNTED, ()))
    if key in seen:
        return
    seen.add(key)
    reset_at = _count(current_app, key)
    if reset_at is not None:
        raise TooManyRequests("too many token requests",
                              retry_after=max(1, math.ceil(reset_at - time.time())))


def allowed(app, key: str, environ: dict) -> bool:
    """One token request for ``key`` counted outside a Flask request (``idp.oauth.direct``):
    True when it is within the limit, noted in ``environ`` so that Flask, if the request
    goes on to it, does not count it again. A refused request is not noted: Flask counts
    it again (over the limit, so still refused) and answers the 429."""
    if _count(app, key) is not None:
        return False
    environ.setdefault(COUNTED, set()).add(key)
    return True


def _count(app, key: str) -> float | None:
    """Count one request for ``key`` against every limit: None when all allow it, else
    when the first refusing window resets."""
    strategy = limiter.limiter
    identifiers = (app.config["RATELIMIT_KEY_PREFIX"], LIMITED_VIEW, key)
    for item in _parsed(app.extensions[config.EXTENSION].token_rate_limit):
        reset_at = _hit(strategy, item, identifiers)
        if reset_at is not None:
            return reset_at
    return None


@functools.lru_cache(maxsize=8)
def _parsed(limit: str) -> tuple[limits.RateLimitItem, ...]:
    """The setting's rate string, parsed once rather than on every token request."""
    return tuple(limits.parse_many(limit))


BATCH_SHARE = 50
_MOST_KEYS = 10_000  # then windows that have ended are dropped


@dataclass
class _Batch:
    """This worker's requests for one key and limit not yet sent to the storage."""

    since: float            # when this worker's window for the key began (time.time())
    hits: int = 0
    refused_until: float = 0.0


_batches: dict[str, _Batch] = {}
_lock = threading.Lock()


def batch_size(item: limits.RateLimitItem) -> int:
    """How many requests a worker counts before it settles them with the storage."""
    return max(1, item.amount // BATCH_SHARE)


def _hit(strategy, item: limits.RateLimitItem, identifiers: tuple[str, ...]) -> float | None:
    """Count one request; None if it is allowed, else when the window resets."""
    size = batch_size(item)
    if size == 1:  # exact: every request is a hit in the storage
        if strategy.hit(item, *identifiers):
            return None
        return strategy.get_window_stats(item, *identifiers).reset_time
    name = item.key_for(*identifiers)
    now = time.time()
    with _lock:
        batch = _batches.get(name)
        if batch is None:
            if len(_batches) >= _MOST_KEYS:
                _forget_ended(now, item.get_expiry())
            batch = _batches[name] = _Batch(since=now)
        if now < batch.refused_until:
            return batch.refused_until
        cost = 0
        if now - batch.since >= item.get_expiry():  # a new window: settle what is left
            cost, batch.hits, batch.since = batch.hits, 0, now
        batch.hits += 1
        if batch.hits >= size:
            cost, batch.hits = cost + batch.hits, 0
    if cost and not strategy.hit(item, *identifiers, cost=cost):
        reset_at = strategy.get_window_stats(item, *identifiers).reset_time
        with _lock:
            batch.refused_until = reset_at
        return reset_at
    return None


def _forget_ended(now: float, expiry: int) -> None:
    for name in [n for n, b in _batches.items()
                 if now - b.since >= expiry and now >= b.refused_until]:
        del _batches[name]


def forget() -> None:
    """Drop every worker-side count (tests; the storage's counts are reset with it)."""
    with _lock:
        _batches.clear()
