"""Error answers: OAuth-shaped JSON for the APIs, a calm HTML page for people.

Exceptions are logged with their stack; their text never reaches the client.
"""

from __future__ import annotations

import logging
import time

from flask import Flask
from flask import g
from flask import jsonify
from flask import render_template
from flask import request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from werkzeug.exceptions import HTTPException

from idp.extensions import db
from idp.extensions import limiter

log = logging.getLogger(__name__)

API_PATHS = frozenset({"/token", "/revoke", "/introspect", "/userinfo", "/jwks.json",
                       "/device_authorization", "/openapi.json"})
API_PREFIXES = ("/.well-known/", "/api/")


def wants_json() -> bool:
    path = request.path
    return path.startswith(API_PREFIXES) or any(
        path == api or path.startswith(api + "/") for api in API_PATHS)


def error_page(status: int, title: str, message: str, detail: str | None = None,
               done: bool = False, back: tuple[str, str] | None = None):
    """An HTML error page; ``detail`` is the protocol's own words, for the service's developers.
    ``done``: nothing went wrong, the page only says how things stand (no error code);
    ``back``: (URL, label) of a link back to the service."""
    return render_template("error.html", status=None if done else status, title=title,
                           message=message, detail=detail, done=done, back=back), status


def form_expired():
    """The answer to a form that failed its CSRF or single-use check (idp.security.csrf)."""
    return error_page(400, _("The form has expired"),
                      _("Please go back, reload the page and try again."))


def retry_after() -> str:
    """Seconds until the rate limit that refused this request lets it through again
    (RFC 6585 §4); at least 1."""
    limit = limiter.current_limit
    if limit is None:
        return "60"
    return str(max(1, int(limit.reset_at - time.time())))


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        log.info("CSRF check failed: %s", error.description)
        return form_expired()

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.response is not None:
            # A complete answer built by a library (Authlib's 401/403 with
            # WWW-Authenticate, RFC 6750 §3): send it as it is.
            return error.response
        if wants_json():
            # A refused input (idp.inputs) and a body over the limit are both
            # invalid_request, the only OAuth code for a malformed request (RFC 6749 §5.2).
            error_code = "invalid_request" if error.code in (400, 413) else (
                error.name.lower().replace(" ", "_"))
            response = jsonify(error=error_code, error_description=error.description)
            response.status_code = error.code
        else:
            titles = {
                404: _("Page not found"),
                405: _("This action is not allowed here"),
                429: _("Too many attempts"),
                413: _("The request is too large"),
            }
            message = (_("Please wait a little and try again.") if error.code == 429
                       else _("Please check the address, or go back and try again."))
            response = app.make_response(error_page(
                error.code or 500, titles.get(error.code, _("Something went wrong")), message))
        if error.code == 429 and "Retry-After" not in response.headers:
            # A limit counted outside flask-limiter's decorators says its own wait.
            own = getattr(error, "retry_after", None)
            response.headers["Retry-After"] = str(own) if isinstance(own, int) else retry_after()
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(SQLAlchemyTimeoutError)
    def database_unavailable(error: Exception):
        """The database is down or unreachable: 503, and the pool heals itself
        (a disconnect invalidates the pool, and idle connections are pinged at
        checkout: idp.db.ping_idle_connections)."""
        # The endpoint, not the path: a path may hold a resident's id (idp.logs).
        log.error("database unavailable on %s %s: %s", request.method, request.endpoint,
                  type(error).__name__)
        g.idp_database_unavailable = True
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; nothing to roll back
            db.session.close()
        if wants_json():
            response = jsonify(error="temporarily_unavailable",
                               error_description="The service is temporarily unavailable.")
            response.status_code = 503
        else:
            body, _status = error_page(503, _("The service is temporarily unavailable"),
                                       _("Please try again in a few minutes."))
            response = app.make_response((body, 503))
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.endpoint)
        if wants_json():
            return jsonify(error="server_error",
                           error_description="The server could not complete the request."), 500
        return error_page(500, _("Something went wrong"),
                          _("The service could not complete your request. Please try again "
                            "later."))
