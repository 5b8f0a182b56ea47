"""POST /api/touch-events: kiosks log touches, against a consented resident or anonymously.

The blueprint keeps its name (``kiosk_api``): its endpoint names are part of the URL map."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify
from flask import request

from idp.extensions import csrf
from idp.kiosk import service
from idp.oauth import tokens
from idp.oauth.server import bearer_token
from idp.oauth.server import require_oauth

bp = Blueprint("kiosk_api", __name__)


@bp.post("/api/touch-events")
@csrf.exempt
@require_oauth("touch_events")
def touch_events():
    """Store a batch of up to ``touch_events_max_batch`` touches; all or nothing."""
    token = bearer_token()
    payload = request.get_json(silent=True)
    if payload is None:
        return jsonify(error="invalid_request",
                       error_description="The body must be JSON (Content-Type: "
                                         "application/json)."), 400
    try:
        events = service.validate_batch(payload, not_before=tokens.granted_at(token))
    except service.TouchEventError as exc:
        return jsonify(error="invalid_request", field=exc.field,
                       error_description=f"{exc.field}: {exc}" if exc.field else str(exc)), 400
    # A device-flow token speaks for the resident who approved it; a
    # client_credentials token (no resident) logs passers-by anonymously.
    stored, duplicates = service.store(token.client, token.resident_id, events)
    service.seen(token.client_id)
    return jsonify(stored=stored, duplicates=duplicates), 201
