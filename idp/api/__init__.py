"""Resource-server APIs: endpoints that accept our access tokens (``require_oauth``) on
behalf of a domain. They read the bearer token through ``idp.oauth.server``, never
through Authlib, and call the domain's service for the work."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask import request

NOT_JSON = "The body must be JSON (Content-Type: application/json)."


def error(status: int, code: str, description: str, field: str | None = None, **extra: Any):
    """The JSON APIs' error answer: ``{"error", "field"?, "error_description", …}``."""
    body: dict[str, Any] = {"error": code}
    if field is not None:
        body["field"] = field
    body.update(extra, error_description=description)
    return jsonify(body), status


def invalid(exc: Exception, **extra: Any):
    """400 ``invalid_request`` for a validation error carrying ``field`` (the member)."""
    field = getattr(exc, "field", None)
    return error(400, "invalid_request", f"{field}: {exc}" if field else str(exc), field,
                 **extra)


def json_body() -> Any:
    """The request's JSON, or None when the body is not JSON (answer ``not_json()``)."""
    return request.get_json(silent=True)


def not_json():
    return error(400, "invalid_request", NOT_JSON)
