"""POST /api/sensor-counts: people-counting sensors post passers-by per interval and
direction. No identity is accepted: a token that speaks for a resident is refused, and
so is any member of a count other than the four it has."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify

from idp.api import error
from idp.api import invalid
from idp.api import json_body
from idp.api import not_json
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
        return error(403, "invalid_client", "Only a registered sensor posts counts, with a "
                                            "client_credentials token.")
    payload = json_body()
    if payload is None:
        return not_json()
    try:
        counts = service.validate_batch(payload)
    except service.SensorCountError as exc:
        return invalid(exc)
    stored, replaced = service.store(token.client, counts)
    service.seen(token.client_id)
    return jsonify(stored=stored, replaced=replaced), 201
