"""Flask extensions, created unbound and bound in the app factory, and the request's
unit of work on the database extension."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask import g
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from idp.db import Base

db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()
babel = Babel()
# Storage comes from the app config: Redis when IDP_REDIS_URL is set (shared by
# every worker and node; behind a circuit breaker with an in-memory fallback,
# idp.limiter_storage), memory otherwise. No X-RateLimit-* headers on every
# answer: reading the window for them cost a second Redis round trip per
# limited request (docs/performance.md); a 429 says Retry-After (idp.errors).
limiter = Limiter(key_func=get_remote_address, headers_enabled=False)

COMMIT_ON_ERROR = "idp_commit_on_error"


def end_unit_of_work(response: Any) -> Any:
    """Each request is one unit of work, committed here once the view has answered.

    Services never commit; views never need to. A successful answer (below
    400) commits what the request wrote, an error answer rolls it back, so
    nothing half-written is left; a client error (4xx) keeps its work only
    when the view said so (``commit_on_error``). The commit happens before a
    byte of the answer leaves (a redirect, or a streamed body), and before
    the outbox delivers what the request queued (a ``teardown_request``).
    A commit that fails is rolled back and answered like an exception in the
    view (the app's error handlers: 503 when the database is gone, else 500).
    Blueprint hooks run before it, so what they write (the console's form
    tokens) is committed too; the app's other hooks (security headers) run
    after it, on whichever answer it returns.
    """
    keep = g.pop(COMMIT_ON_ERROR, False)
    if response.status_code >= 400 and not (keep and response.status_code < 500):
        db.session.rollback()
        return response
    try:
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - answered by the app's error handlers
        db.session.rollback()
        return current_app.make_response(current_app.handle_user_exception(exc))
    return response


def commit_on_error() -> None:
    """Keep this request's work although it answers with a client error (4xx): the
    audit record of a refused attempt that counts towards a limit, a refresh
    token family revoked on replay, an OAuth error's audit record."""
    setattr(g, COMMIT_ON_ERROR, True)
