"""POST/DELETE /api/registered-data: member companies' backends contribute registered data.

A client_credentials token holding ``contribute:<category>`` for each category in the
batch (granted only under a data-use contract in force). Errors have the touch-event
API's shape: ``{"error", "field", "error_description"}``; a malformed batch is 400
``invalid_request``, a refusal by the rules 403 (``access_denied``,
``insufficient_scope``) or 409 (``conflict``) and says why (``idp.exchange.records``).
A refusal is kept in the audit trail although the answer is an error.
"""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify

from idp.api import error
from idp.api import invalid
from idp.api import json_body
from idp.api import not_json
from idp.exchange import records
from idp.extensions import commit_on_error
from idp.extensions import csrf
from idp.oauth.server import bearer_token
from idp.oauth.server import require_oauth

bp = Blueprint("registered_data_api", __name__)


def _client_token():
    """The bearer token, or an error answer when it speaks for a resident: contributions
    come from a company's backend (client_credentials), never from a resident's grant."""
    token = bearer_token()
    if token.resident_id is not None:
        return None, error(403, "access_denied",
                            "Contributions need a client_credentials token of the "
                            "contributing company.")
    return token, None


def _granted(token) -> list[str]:
    return token.scope.split()


@bp.post("/api/registered-data")
@csrf.exempt
@require_oauth()
def contribute():
    """Store a batch of up to ``registered_data_max_batch`` records; all or nothing."""
    token, refusal = _client_token()
    if refusal is not None:
        return refusal
    payload = json_body()
    if payload is None:
        return not_json()
    try:
        stored, duplicates = records.contribute(token.client, _granted(token), payload)
    except records.RecordError as exc:
        return invalid(exc)
    except records.Refused as exc:
        commit_on_error()  # the refusal's audit record is kept
        return error(exc.status, exc.error, f"{exc.field}: {exc}", exc.field)
    return jsonify(stored=stored, duplicates=duplicates), 201


@bp.delete("/api/registered-data/<path:record_id>")
@csrf.exempt
@require_oauth()
def withdraw(record_id: str):
    """Delete one of the company's records by its ``record_id``; 204."""
    token, refusal = _client_token()
    if refusal is not None:
        return refusal
    try:
        records.withdraw(token.client, _granted(token), record_id)
    except LookupError as exc:
        return error(404, "not_found", str(exc), "record_id")
    except records.Refused as exc:
        return error(exc.status, exc.error, str(exc), exc.field)
    return "", 204
