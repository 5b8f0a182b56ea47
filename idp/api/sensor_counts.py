"""POST /api/sensor-counts: people-counting sensors post passers-by per interval and
direction. No identity is accepted: a token that speaks for a resident is refused, and
so is any member of a count other than the four it has."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify
from flask import request

from idp.extensions import csrf
from idp.oauth.server import bearer_token
from idp.oauth.server import require_oauth
from idp.sensors import service

bp = Blueprint("sensor_api", __name__)


@bp.post("/api/sensor-counts")
@csrf.exempt
@require_oauth("sensor_counts")
def sensor_counts():
    """Store a batch of up to ``MAX_BATCH`` counts; all or nothing; a resend replaces."""
    token = bearer_token()
    if token.resident_id is not None or service.sensor_for(token.client_id) is None:
        return jsonify(error="invalid_client",
                       error_description="Only a registered sensor posts counts, with a "
                                         "client_credentials token."), 403
    payload = request.get_json(silent=True)
    if payload is None:
        return jsonify(error="invalid_request",
                       error_description="The body must be JSON (Content-Type: "
                                         "application/json)."), 400
    try:
        counts = service.validate_batch(payload)
    except service.SensorCountError as exc:
        return jsonify(error="invalid_request", field=exc.field,
                       error_description=f"{exc.field}: {exc}" if exc.field else str(exc)), 400
    stored, replaced = service.store(token.client, counts)
    service.seen(token.client_id)
    return jsonify(stored=stored, replaced=replaced), 201
