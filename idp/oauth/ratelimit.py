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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
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


def token_limit() -> str:
    return config.settings().token_rate_limit


def counted(query_client: Callable[[str], Any]) -> Callable[[str], Any]:
    """``query_client`` that also counts token requests against the client looked up."""

    def query(client_id: str) -> Any:
        client = query_client(client_id)
        if has_request_context() and request.endpoint == LIMITED_VIEW:
            count("client:" + client.client_id if client is not None
                  else "address:" + (get_remote_address() or "unknown"))
        return client

    return query


def count(key: str) -> None:
    """One token request for ``key`` (once per request); TooManyRequests over the limit."""
    seen = g.setdefault("idp_token_limit_keys", set())
    if key in seen:
        return
    seen.add(key)
    strategy = limiter.limiter
    identifiers = (current_app.config["RATELIMIT_KEY_PREFIX"], LIMITED_VIEW, key)
    for item in limits.parse_many(token_limit()):
        if not strategy.hit(item, *identifiers):
            reset_at = strategy.get_window_stats(item, *identifiers).reset_time
            raise TooManyRequests("too many token requests",
                                  retry_after=max(1, math.ceil(reset_at - time.time())))
