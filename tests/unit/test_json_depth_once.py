"""The JSON body's depth is checked once per request however often it is read
(idp.inputs.Request.get_json), and a refused body stays refused."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from werkzeug.exceptions import BadRequest

from idp import inputs


def test_a_body_read_twice_is_walked_once(app):
    """Test that the guard's read and the view's read of the same body walk it once."""
    body = json.dumps({"events": [{"target": "map-north"}] * 3})
    with app.test_request_context("/api/touch-events", method="POST", data=body,
                                  content_type="application/json"):
        from flask import request
        with mock.patch.object(inputs, "_depth", wraps=inputs._depth) as walk:
            first = request.get_json(silent=True)
            second = request.get_json(silent=True)
        assert first == second == {"events": [{"target": "map-north"}] * 3}
        assert walk.call_count == 1


def test_a_body_too_deep_is_refused_on_every_read(app):
    """Test that a body nested beyond the limit is refused again on a second read: only a
    body that passed the check is remembered."""
    deep: object = "x"
    for _ in range(inputs.MAX_JSON_DEPTH + 5):
        deep = [deep]
    with app.test_request_context("/api/touch-events", method="POST", data=json.dumps(deep),
                                  content_type="application/json"):
        from flask import request
        for _ in range(2):
            with pytest.raises(BadRequest):
                request.get_json(silent=True)
