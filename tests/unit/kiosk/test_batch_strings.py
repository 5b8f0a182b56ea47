"""What a batch of touches that ``validate_batch`` takes may hold: only printable strings of
at most ``LONGEST_STRING`` characters, nested three levels deep. The direct answer of a
batch beneath Flask (``idp.api.touch_events``) relies on it to leave out ``idp.inputs``'
walk of every string (``idp.oauth.direct.answer_json``'s ``strings_within``): whatever the
batch, what the validation takes is never what that walk refuses."""

from __future__ import annotations

import datetime as dt

import hypothesis
import pytest
from hypothesis import HealthCheck
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from idp import config
from idp import inputs
from idp.kiosk import service

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
# Strings a hostile kiosk may send: NUL, lone surrogates, control and format characters,
# anything, at and past each limit.
hostile = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zs", "Zl"]), max_size=4),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "\u202e", " ", "", "\\u0000",
                     "2026-12-04T11:59:00Z", "2026-12-04T20:59:00+09:00",
                     "2026-12-04T11:59:00\x00Z", "２０２６-12-04T11:59:00Z"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "あ", "\x00", " "]),
              st.sampled_from([99, 100, 101, 199, 200, 201, 256, 257, 8193])),
)
member = st.one_of(st.sampled_from(["occurred_at", "target", "event_id"]), hostile)
value = st.one_of(hostile, st.none(), st.integers(), st.lists(hostile, max_size=2),
                  st.dictionaries(hostile, hostile, max_size=2))
# Most touches near the limits of what is taken, some hostile, some not touches at all.
valid_instant = st.sampled_from(["2026-12-04T11:59:00Z", "2026-12-04T20:59:00+09:00",
                                 "2026-12-01T00:00:00.5-03:30", "2026-12-04T12:04:59Z"])
instant = st.one_of(valid_instant, valid_instant, valid_instant, hostile)
printable = st.characters(categories=["L", "M", "N", "P", "S"])
text = st.one_of(st.text(printable, min_size=1, max_size=8),
                 st.text(printable, min_size=95, max_size=205),
                 st.text(min_size=1, max_size=8), hostile)
plausible = st.fixed_dictionaries({"occurred_at": instant, "target": text},
                                  optional={"event_id": st.one_of(text, st.none())})
touch = st.one_of(plausible, st.dictionaries(member, value, max_size=4), value)
batch = st.one_of(
    st.fixed_dictionaries({"events": st.lists(plausible, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"events": st.lists(plausible, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"events": st.lists(touch, min_size=1, max_size=3)}),
    st.dictionaries(member, value, max_size=2))

def walk_refuses(payload, limit: int) -> bool:
    return inputs.json_refusal(payload, limit) is not None


# ``app``: the batch's size limit is a setting. The same app serves every example.
@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=batch)
@example(payload={"events": [{"occurred_at": "2026-12-04T20:59:00.123456+09:00",
                              "target": " " + "あ" * (service.MAX_TARGET - 1),
                              "event_id": "😀" * service.MAX_EVENT_ID}]})
# Found by this test: Python 3.11's ISO parser takes a NUL before the offset.
@example(payload={"events": [{"occurred_at": "2026-12-04T11:59:00\x00Z", "target": "0"}]})
def test_a_batch_the_validation_takes_holds_nothing_the_input_walk_refuses(app, payload):
    """Test that every batch ``validate_batch`` takes passes ``idp.inputs.json_refusal`` at
    the least ``max_input_length`` the settings allow, and at ``LONGEST_STRING``."""
    try:
        service.validate_batch(payload, now=NOW)
    except service.TouchEventError:
        hypothesis.event("refused")
        return
    hypothesis.event("taken")
    assert not walk_refuses(payload, service.LONGEST_STRING)
    assert not walk_refuses(payload, 256)


def test_the_bound_is_within_every_allowed_input_limit():
    """Test that ``LONGEST_STRING`` is within the least ``max_input_length`` the settings
    accept, so the walk is left out under every configuration that starts."""
    least = config.Settings.load({"max_input_length": 256}, environ={}).max_input_length
    with pytest.raises(config.SettingsError, match="max_input_length"):
        config.Settings.load({"max_input_length": least - 1}, environ={})
    assert least >= service.LONGEST_STRING


def test_the_longest_strings_are_taken_and_one_more_is_not(app):
    """Test the bounds themselves: a target of ``MAX_TARGET`` and an event id of
    ``MAX_EVENT_ID`` characters are taken, one more of either is not, and neither takes
    NUL or a lone surrogate."""
    def one(**fields):
        return {"events": [{"occurred_at": "2026-12-04T11:59:00Z", "target": "t", **fields}]}

    service.validate_batch(one(target="a" * service.MAX_TARGET,
                               event_id="e" * service.MAX_EVENT_ID), now=NOW)
    for fields in ({"target": "a" * (service.MAX_TARGET + 1)},
                   {"event_id": "e" * (service.MAX_EVENT_ID + 1)},
                   {"target": "a\x00b"}, {"target": "a\ud800"}, {"event_id": "x\x00"},
                   {"event_id": "\udfff"}):
        try:
            service.validate_batch(one(**fields), now=NOW)
        except service.TouchEventError:
            continue
        raise AssertionError(f"taken: {fields!r}")
