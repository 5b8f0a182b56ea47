"""What a request may bring: body size per endpoint class, JSON depth, and no
character or length a database or a later step cannot take.

Three mechanisms, each applied to every request, so that no view has to
remember them:

1. ``Request.max_content_length`` depends on the endpoint class (werkzeug reads
   at most that many bytes of the body, and answers 413 beyond it, before any
   form or JSON is parsed; ``max_body_*`` settings):

   - ``api``: ``/api/*`` (touch-event batches);
   - ``protocol``: the OAuth/OIDC endpoints answered in JSON (``/token``,
     ``/revoke``, ``/introspect``, ``/device_authorization``, ``/userinfo`` …);
   - ``page``: everything else (HTML pages and their forms).

2. ``Request.get_json`` is the one JSON body reader: a body nested deeper than
   ``MAX_JSON_DEPTH`` (or so deep that the parser itself gives up with
   ``RecursionError``) is a 400, even with ``silent=True`` — it is not "no JSON",
   it is a refused one.

3. ``check_inputs`` (a ``before_request`` hook) refuses every path segment, query,
   form and JSON string — names and values — that holds NUL or a lone surrogate, or is
   longer than ``max_input_length`` characters. PostgreSQL refuses NUL in
   text, no encoder can write a lone surrogate, and no field of ours needs
   more; left alone, each of them ended as a 500 deep in a view. The refusal is
   :class:`BadInput` (400), which ``idp.errors`` answers in the endpoint's own
   shape (OAuth JSON ``invalid_request`` on protocol endpoints and ``/api/*``,
   an HTML page elsewhere); a view that must answer differently names its own
   answer with :func:`answers_bad_input` (``/authorize``, RFC 6749 §4.1.2.1).

werkzeug decodes query strings and urlencoded forms as UTF-8 and keeps an
invalid sequence percent-encoded, so a lone surrogate can arrive only through
a JSON ``\\uD800`` escape; NUL arrives as ``%00`` anywhere.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask import current_app
from flask import request
from flask.wrappers import Request as FlaskRequest
from werkzeug.exceptions import BadRequest

from idp import config
from idp.config import Settings
from idp.errors import API_PATHS

# Deeper than any body we accept (a touch-event batch is 3 levels) and far below
# the parser's recursion limit.
MAX_JSON_DEPTH = 32
_NAME = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,64}$")
_SURROGATE = re.compile("[\ud800-\udfff]")
_REFUSED = re.compile("[\x00\ud800-\udfff]")  # NUL or a lone surrogate (``problem``)


class BadInput(BadRequest):
    """A request value refused by :func:`check_inputs`; ``field`` names it when the
    name itself is printable (else it is None)."""

    def __init__(self, field: str | None, problem: str):
        self.field = field if field is not None and _NAME.match(field) else None
        where = f"'{self.field}'" if self.field else "A parameter name"
        super().__init__(f"{where} {problem}.")


def endpoint_class(path: str) -> str:
    """``api``, ``protocol`` or ``page`` (see the module docstring)."""
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/.well-known/") or any(
            path == p or path.startswith(p + "/") for p in API_PATHS):
        return "protocol"
    return "page"


class Request(FlaskRequest):
    """Flask's request with per-endpoint-class body limits and a guarded JSON reader."""

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None:
            return self._max_content_length
        settings: Settings = config.settings()
        return {"api": settings.max_body_api, "protocol": settings.max_body_protocol,
                "page": settings.max_body_page}[endpoint_class(self.path)]

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    @property
    def max_form_memory_size(self) -> int | None:
        # A multipart form's fields are held in memory: no more than the body itself.
        if self._max_form_memory_size is not None:
            return self._max_form_memory_size
        return self.max_content_length

    @max_form_memory_size.setter
    def max_form_memory_size(self, value: int | None) -> None:
        self._max_form_memory_size = value

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            value = super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            raise BadRequest("The JSON body is nested too deeply.") from None
        if value is None or value is self.__dict__.get("_idp_json_checked"):
            return value  # werkzeug's cached body, already walked on an earlier call
        if too_deep(value):
            raise BadRequest(f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.")
        # The guard and the view both read the body: walking it once is enough (a batch of
        # touch events was walked twice, 4 % of its CPU; docs/performance.md).
        self.__dict__["_idp_json_checked"] = value
        return value


def too_deep(value: Any) -> bool:
    """Whether a parsed JSON value is nested more than ``MAX_JSON_DEPTH`` levels deep."""
    return _depth(value) > MAX_JSON_DEPTH


TOO_DEEP = (None, "")  # what ``json_refusal`` finds in a value nested too deeply


def json_refusal(value: Any, limit: int) -> tuple[str | None, str] | None:
    """The first (name, string) among the keys and strings of a parsed JSON value that
    :func:`check_inputs` refuses (NUL, a lone surrogate, more than ``limit``
    characters), ``TOO_DEEP`` for a value nested more than ``MAX_JSON_DEPTH`` levels
    (which ``Request.get_json`` refuses), or None when there is none: one walk. One
    length and one regular-expression search per string, and ``problem`` only for a
    string that fails: a batch of touch events holds 600 of them (docs/performance.md)."""
    bad = _REFUSED.search
    stack: list[tuple[str | None, Any, int]] = [(None, value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        where, item, level = pop()
        if isinstance(item, str):
            if len(item) > limit or bad(item):
                return where, item
        elif isinstance(item, dict):
            if level > MAX_JSON_DEPTH:
                return TOO_DEEP
            for key, child in item.items():
                if len(key) > limit or bad(key):
                    return key, key
                push((key, child, level + 1))
        elif isinstance(item, list):
            if level > MAX_JSON_DEPTH:
                return TOO_DEEP
            for child in item:
                push((where, child, level + 1))
    return None


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def problem(value: str, limit: int) -> str | None:
    """Why ``value`` is refused, or None when it is acceptable."""
    if "\x00" in value:
        return "must not contain NUL"
    if _SURROGATE.search(value):
        return "must not contain a lone surrogate"
    if len(value) > limit:
        return f"must be at most {limit} characters"
    return None


def answers_bad_input(answer: Callable[[BadInput], Any]):
    """Decorate a view (directly under its route) whose refusals of bad input must
    take another shape than its endpoint class's; ``answer(error)`` makes it."""
    def decorate(view):
        view.bad_input_answer = answer
        return view
    return decorate


def check_inputs():
    """``before_request``: refuse NUL, lone surrogates and overlong values (see above)."""
    limit = config.settings().max_input_length
    # Path segments too (/admin/clients/<client_id>): werkzeug decodes %00 in them.
    sources = [((k, v) for k, v in (request.view_args or {}).items() if isinstance(v, str)),
               request.args.items(multi=True)]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sources.append(request.form.items(multi=True))
    # One regular-expression search and one length per string, and ``problem`` only for
    # a string that fails: a batch of touch events holds 600 of them (docs/performance.md).
    bad = _REFUSED.search
    for pairs in sources:
        for name, value in pairs:
            for text in (name, value):
                if bad(text) or len(text) > limit:
                    return _refuse(BadInput(name, problem(text, limit)))
    if request.is_json:
        # (A body nested too deeply was refused by get_json already.)
        refused = json_refusal(request.get_json(silent=True), limit)
        if refused is not None and refused is not TOO_DEEP:
            name, text = refused
            return _refuse(BadInput(name, problem(text, limit)))
    return None


def _refuse(error: BadInput):
    view = current_app.view_functions.get(request.endpoint or "")
    answer = getattr(view, "bad_input_answer", None)
    if answer is None:
        raise error
    return answer(error)


def init_app(app: Flask) -> None:
    app.request_class = Request
    app.before_request(check_inputs)


MAX_INSTANT = 40  # characters of an ISO 8601 timestamp, more than any needs


def iso_instant(value: Any) -> dt.datetime:
    """An ISO 8601 timestamp with a time zone (``Z`` or an offset), as aware UTC; a
    ValueError saying what is wrong otherwise. The one parser of the JSON APIs'
    timestamps (touch events, sensor counts, registered data), which wrap the message
    in their own error with the member's name."""
    # ASCII and printable: Python 3.11's parser takes a NUL before the offset
    # ("2026-12-04T11:59:00\x00Z"), which the walk of every string refuses elsewhere.
    if not isinstance(value, str) or len(value) > MAX_INSTANT or not value.isascii() \
            or not value.isprintable():
        raise ValueError("must be an ISO 8601 timestamp with a time zone")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 timestamp with a time zone") from None
    if parsed.tzinfo is None:
        raise ValueError("must carry a time zone (e.g. Z or +09:00)")
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 (found by schemathesis)
        raise ValueError("is out of range") from None
