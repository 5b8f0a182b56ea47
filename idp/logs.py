"""Logging: JSON lines in production, text for people; one line and the metrics per request.

``configure`` installs one handler on the root logger: with ``log_format``
json (or auto in production) every line is one JSON object (python-json-logger)
with ``time``, ``level``, ``logger``, ``message`` and, during a request,
``request_id``. ``init_app`` gives each request an id — the ``X-Request-ID``
of a trusted proxy (``idp.proxy`` removes the header from anyone else), or a
new one — returns it in ``X-Request-ID``, and after the answer logs one line
(logger ``idp.request``: method, path without the query string, endpoint,
status, duration_ms, client_id) and counts the request (``idp.metrics``).

What is never logged: query strings and bodies (login hints, codes, tokens,
passwords), emails, names, subs, cookies and Authorization headers; the
libraries that would (Authlib's DEBUG lines hold issued tokens) are held at
INFO (``NEVER_DEBUG``). Log
calls name things by ids that are not personal (a client id, an outbox row)
or by an exception's class, never by its message.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Callable

from flask import Flask
from flask import Response
from flask import g
from flask import has_request_context
from flask import request
from pythonjsonlogger.json import JsonFormatter

from idp import metrics
from idp.config import Settings

HANDLER_MARK = "idp_handler"
# Libraries whose DEBUG lines carry secrets: Authlib logs each issued token
# ("Issue token {...access_token...}"), urllib3 the URLs it calls (a logout
# token in a query). They stay at INFO whatever log_level says.
NEVER_DEBUG = ("authlib", "urllib3")
REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
CLIENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Probes and scrapes come every few seconds: counted, not logged at INFO.
QUIET_ENDPOINTS = frozenset({"observability.healthz", "observability.readyz",
                             "observability.metrics"})
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_RENAME = {"asctime": "time", "levelname": "level", "name": "logger"}

request_log = logging.getLogger("idp.request")


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = (g.get("request_id", "-") if has_request_context() else "-")
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(JSON_FIELDS, rename_fields=JSON_RENAME, json_ensure_ascii=False,
                         timestamp=False)


def formatter(settings: Settings) -> logging.Formatter:
    return json_formatter() if settings.json_logs else logging.Formatter(TEXT_FORMAT)


def configure(settings: Settings) -> None:
    """The root logger's one handler (stderr), formatted as the settings say; idempotent."""
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    for name in NEVER_DEBUG:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    handler = next((h for h in root.handlers if getattr(h, HANDLER_MARK, False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, HANDLER_MARK, True)
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    handler.setFormatter(formatter(settings))


def granian_log_config(settings: Settings) -> dict:
    """granian's own loggers (start-up, worker respawns) in the same format as the app's."""
    fmt = ({"()": "pythonjsonlogger.json.JsonFormatter", "fmt": JSON_FIELDS,
            "rename_fields": JSON_RENAME} if settings.json_logs
           else {"()": "logging.Formatter", "fmt": "%(asctime)s %(levelname)s %(message)s"})
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"generic": fmt},
        "handlers": {"console": {"formatter": "generic", "class": "logging.StreamHandler",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {"_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
                    "granian.access": {"handlers": ["console"], "level": "INFO",
                                       "propagate": False}},
    }


# ---- each request -------------------------------------------------------------------------

def _begin() -> None:
    g.request_started = time.perf_counter()
    g.request_id = request_id(request.headers.get(REQUEST_ID_HEADER, ""))


def request_id(given: str) -> str:
    """The request's id: the caller's ``X-Request-ID`` when it is a plausible one, else new."""
    return given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _client_id() -> str | None:
    # A plain string the OAuth server noted: the client object itself is expired by the
    # commit that ran before this hook, and reading it would cost a SELECT.
    authenticated = g.get("oauth_client_id")
    if authenticated is not None:
        return authenticated
    claimed = request.args.get("client_id", "")
    return claimed if CLIENT_ID.fullmatch(claimed) else None


def _path() -> str:
    """The path without its query string; a route's pattern when it has variables
    (``/consent/<uid>``, ``/admin/proofing/<resident_id>``): their values are
    interaction ids, user codes and resident ids."""
    rule = request.url_rule
    if rule is not None and rule.arguments:
        return rule.rule
    return request.path[:200]


def _finish(response: Response) -> Response:
    started = g.get("request_started")
    if started is None:  # a hook before ours answered; nothing to measure
        return response
    response.headers[REQUEST_ID_HEADER] = g.request_id
    answered(request.endpoint, request.method, _path, response.status_code, started,
             _client_id, g.request_id)
    return response


def answered(endpoint: str | None, method: str, path: Callable[[], str], status: int,
             started: float, client_id: Callable[[], str | None], request_id: str) -> None:
    """Count and log one answer, ``started`` (``time.perf_counter()``) when the request
    reached the app: the end of every request, through Flask (``_finish``) or beneath it
    (``idp.oauth.direct``). ``path`` and ``client_id`` are asked only when the line is
    logged."""
    seconds = time.perf_counter() - started
    metrics.count_request(endpoint, method, status, seconds)
    level = logging.DEBUG if endpoint in QUIET_ENDPOINTS else logging.INFO
    if request_log.isEnabledFor(level):
        where = path()
        request_log.log(level, "%s %s %s", method, where, status,
                        extra={"method": method, "path": where, "endpoint": endpoint or "none",
                               "status": status, "duration_ms": round(seconds * 1000, 1),
                               "client_id": client_id(), "request_id": request_id})


def init_app(app: Flask) -> None:
    """Called first by ``create_app``: ours is the first ``before_request`` hook and the
    last ``after_request`` one, so the time and status are those of the whole answer."""
    app.before_request(_begin)
    app.after_request(_finish)
