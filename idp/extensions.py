"""Flask extensions, created unbound and bound in the app factory, and the request's
unit of work on the database extension."""

from __future__ import annotations

import functools
from typing import Any

from flask import Flask
from flask import current_app
from flask import g
from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_qualified_name
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
UNLIMITED = "idp.unlimited_endpoints"


def skip_unlimited(app: Flask) -> None:
    """Run Flask-Limiter's hooks only for views that have one of its limits.

    Flask-Limiter resolves and evaluates limits around every request, also for the
    protocol endpoints, which have none of its limits (the token endpoint's limit is
    its own, ``idp.oauth.ratelimit``): 190 of a token request's 3,700 Python calls
    (docs/performance.md). Called once every view is registered: an endpoint with a
    decorated or blueprint limit, or every endpoint when the app has default or
    application limits, runs the hooks as before; the others skip them.
    """
    manager = limiter.limit_manager
    with app.app_context():
        if manager.application_limits or manager.default_limits:
            unlimited: frozenset[str] = frozenset()
        else:
            unlimited = frozenset(
                endpoint for endpoint, view in app.view_functions.items()
                if not manager.decorated_limits(get_qualified_name(view))
                and not manager.blueprint_limits(app, endpoint.rpartition(".")[0]))
    app.extensions[UNLIMITED] = unlimited
    found = 0
    for hooks, passed in ((app.before_request_funcs, _none), (app.after_request_funcs, _same),
                          (app.teardown_request_funcs, _none)):
        app_hooks = hooks.get(None, [])
        for index, hook in enumerate(app_hooks):
            hook = getattr(hook, "limiter_hook", hook)  # called again: wrap afresh
            if _of_limiter(hook):
                app_hooks[index] = _unless_unlimited(hook, unlimited, passed)
                found += 1
    if found != 3:  # before, after and teardown: a new Flask-Limiter registers others
        raise RuntimeError(f"expected Flask-Limiter's 3 request hooks, found {found}")


def _of_limiter(hook: Any) -> bool:
    if isinstance(hook, functools.partial):
        return limiter in hook.args
    return getattr(hook, "__self__", None) is limiter


def _none(*args: Any) -> None:
    return None


def _same(response: Any) -> Any:
    return response


def _unless_unlimited(hook: Any, unlimited: frozenset[str], passed: Any) -> Any:
    def hook_if_limited(*args: Any) -> Any:
        if request.endpoint in unlimited:
            return passed(*args)
        return hook(*args)

    hook_if_limited.limiter_hook = hook  # type: ignore[attr-defined]
    return hook_if_limited


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
