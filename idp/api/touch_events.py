"""POST /api/touch-events: kiosks log touches, against a consented resident or anonymously.

The blueprint keeps its name (``kiosk_api``): its endpoint names are part of the URL map."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify

from idp.api import invalid
from idp.api import json_body
from idp.api import not_json
from idp.extensions import commit_on_error
from idp.extensions import csrf
from idp.kiosk import service
from idp.oauth import direct
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
    payload = json_body()
    if payload is None:
        return not_json()
    try:
        events = _validated(token, payload)
    except service.SessionEnded as exc:
        # The resident has left: their tokens at this kiosk die with this answer, so
        # the kiosk cannot record anything more against them (docs/kiosk.md).
        service.end_session(token.client, token.resident_id, exc.reason)
        commit_on_error()
        return invalid(exc, session_ended=exc.reason)
    except service.TouchEventError as exc:
        return invalid(exc)
    return _stored(token, events)


def _validated(token, payload) -> list[service.ValidEvent]:
    """The batch checked whole against the token: a resident's touches not before the
    grant, and within their session at the kiosk (``SessionEnded``)."""
    origin = tokens.origin(token)
    granted_at = origin.granted_at if origin is not None else None
    # A family that began with the device flow is a resident's session at a kiosk, however
    # its current token was issued (a refresh included): it ends when idle or long.
    session = (service.session_for(token.client_id, token.resident_id, granted_at)
               if origin is not None and origin.grant_type == service.DEVICE_CODE
               else None)
    return service.validate_batch(payload, not_before=granted_at, session=session)


def _stored(token, events: list[service.ValidEvent]):
    # A device-flow token speaks for the resident who approved it; a
    # client_credentials token (no resident) logs passers-by anonymously.
    stored, duplicates = service.store(token.client, token.resident_id, events)
    service.seen(token.client_id)
    return jsonify(stored=stored, duplicates=duplicates), 201


def answered_directly(app, environ: dict, payload) -> direct.Answer | None:
    """The common batch, answered beneath Flask (``idp.oauth.direct``): a kiosk's valid
    batch with a valid ``touch_events`` token, stored as the view stores it. A batch
    refused for any reason (a resident's session that ended included: Flask ends it)
    and every token Flask would challenge are Flask's to answer; nothing was written."""
    if "HTTP_ORIGIN" in environ:
        return None  # a browser's: CORS is Flask's
    token = direct.bearer(environ, ["touch_events"], as_state=True)
    if token is None:
        return None
    try:
        events = _validated(token, payload)
    except service.TouchEventError:  # SessionEnded too
        return None
    response, status = _stored(token, events)
    return direct.Answer(response.get_data(), token.client_id,
                         (("Content-Type", response.content_type),), wrote=True, status=status)


# A batch validate_batch takes holds the member names, timestamps, and printable targets and
# event ids of at most LONGEST_STRING characters (tests/unit/kiosk/test_batch_strings.py).
direct.answer_json("POST", "/api/touch-events", "kiosk_api.touch_events", answered_directly,
                   strings_within=service.LONGEST_STRING)
