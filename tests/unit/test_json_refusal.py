"""``idp.inputs.json_refusal``: one walk over a parsed JSON body finds what
``Request.get_json`` and ``check_inputs`` refuse (the layer beneath Flask relies on it)."""

from __future__ import annotations

import pytest

from idp import inputs


def nested(levels: int):
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(("value", "found"), [
    ({"events": [{"target": "map", "event_id": "a-1"}]}, None),
    ({"events": [{"target": "a\x00b"}]}, ("target", "a\x00b")),
    ({"events": [{"target": "\ud800"}]}, ("target", "\ud800")),
    ({"events": [{"a\x00": 1}]}, ("a\x00", "a\x00")),
    ({"events": ["x" * 11]}, ("events", "x" * 11)),
    ({"events": ["x" * 10]}, None),
    ("plain", None),
    (None, None),
    (nested(inputs.MAX_JSON_DEPTH), None),
    (nested(inputs.MAX_JSON_DEPTH + 1), inputs.TOO_DEEP),
    ({"a": nested(inputs.MAX_JSON_DEPTH)}, inputs.TOO_DEEP),
])
def test_json_refusal_finds_what_the_request_checks_refuse(value, found):
    """Test that the one walk finds a refused string (name and text), a body nested
    deeper than the limit, and nothing in an acceptable body, at the exact bounds."""
    assert inputs.json_refusal(value, 10) == found
    assert (inputs.too_deep(value)) == (found is inputs.TOO_DEEP)
