"""Sensor-count batches: all or nothing, a small vocabulary of directions, no identity."""

from __future__ import annotations

import datetime as dt

import pytest

from idp.sensors import service
from idp.sensors.service import SensorCountError

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


def count(**overrides) -> dict:
    return {"interval_start": "2026-12-01T09:45:00+09:00", "interval_seconds": 900,
            "direction": "in", "count": 12, **overrides}


def test_a_valid_batch_is_read_in_utc():
    """Test that counts come back validated, their interval start in UTC."""
    valid = service.validate_batch({"counts": [count(), count(direction="out", count=0)]},
                                   now=NOW)
    assert [(c.direction, c.count) for c in valid] == [("in", 12), ("out", 0)]
    assert valid[0].interval_start == dt.datetime(2026, 12, 1, 0, 45, tzinfo=dt.UTC)


@pytest.mark.parametrize(("payload", "field"), [
    ([], ""),
    ({"counts": [count()], "sensor": "x"}, "sensor"),
    ({"counts": {}}, "counts"),
    ({"counts": []}, "counts"),
    ({"counts": ["x"]}, "counts[0]"),
    ({"counts": [count(sub="abc")]}, "counts[0].sub"),
    ({"counts": [count(resident="R1")]}, "counts[0].resident"),
    ({"counts": [count(device_id="mac")]}, "counts[0].device_id"),
    ({"counts": [{"interval_start": "2026-12-01T00:00:00Z", "direction": "in", "count": 1}]},
     "counts[0].interval_seconds"),
    ({"counts": [count(interval_start="yesterday")]}, "counts[0].interval_start"),
    ({"counts": [count(interval_start="2026-12-01T09:45:00")]}, "counts[0].interval_start"),
    ({"counts": [count(interval_start="2026-12-02T09:45:00Z")]}, "counts[0].interval_start"),
    ({"counts": [count(interval_start="2026-11-01T09:45:00Z")]}, "counts[0].interval_start"),
    ({"counts": [count(interval_start="0001-01-01T00:00:00+14:00")]},
     "counts[0].interval_start"),
    ({"counts": [count(interval_start=1733000000)]}, "counts[0].interval_start"),
    ({"counts": [count(interval_seconds=0)]}, "counts[0].interval_seconds"),
    ({"counts": [count(interval_seconds=86401)]}, "counts[0].interval_seconds"),
    ({"counts": [count(interval_seconds=True)]}, "counts[0].interval_seconds"),
    ({"counts": [count(interval_seconds=900.0)]}, "counts[0].interval_seconds"),
    ({"counts": [count(direction="up")]}, "counts[0].direction"),
    ({"counts": [count(direction="IN")]}, "counts[0].direction"),
    ({"counts": [count(direction=["in"])]}, "counts[0].direction"),
    ({"counts": [count(count=-1)]}, "counts[0].count"),
    ({"counts": [count(count=1_000_001)]}, "counts[0].count"),
    ({"counts": [count(count="3")]}, "counts[0].count"),
    ({"counts": [count(count=False)]}, "counts[0].count"),
    ({"counts": [count(), count(count=3)]}, "counts[1]"),
    ({"counts": [count(), count(interval_start="2026-12-01T00:45:00Z")]}, "counts[1]"),
])
def test_bad_batches_name_the_offending_member(payload, field):
    """Test that each kind of bad input is refused with the member it concerns."""
    with pytest.raises(SensorCountError) as caught:
        service.validate_batch(payload, now=NOW)
    assert caught.value.field == field


def test_identity_members_are_refused_as_identity():
    """Test that the message says why: sensor counts carry no identity."""
    with pytest.raises(SensorCountError, match="no identity"):
        service.validate_batch({"counts": [count(sub="pairwise")]}, now=NOW)


def test_a_batch_over_the_limit_is_refused():
    """Test that at most MAX_BATCH counts are accepted in one request."""
    counts = [count(interval_start=(NOW - dt.timedelta(minutes=i)).isoformat())
              for i in range(service.MAX_BATCH + 1)]
    with pytest.raises(SensorCountError, match="at most"):
        service.validate_batch({"counts": counts}, now=NOW)


def test_every_direction_of_the_vocabulary_is_accepted():
    """Test the vocabulary: in, out and the four compass directions."""
    valid = service.validate_batch({"counts": [count(direction=d) for d in service.DIRECTIONS]},
                                   now=NOW)
    assert {c.direction for c in valid} == {"in", "out", "north", "south", "east", "west"}


@pytest.mark.parametrize(("lat", "lon"), [(43.0, None), (None, 141.0), (91, 0), (0, 181),
                                          (float("nan"), 0), ("x", 1)])
def test_bad_coordinates_are_refused(lat, lon):
    """Test that coordinates are both or neither, finite and in range."""
    with pytest.raises(service.SensorError):
        service.checked_placement(service.Placement("広場", lat, lon))


@pytest.mark.parametrize("placement", [
    service.Placement(""), service.Placement("x" * 201),
    service.Placement("広場", area="x" * 201), service.Placement("広場", retention_days=0),
    service.Placement("広場", retention_days=3651)])
def test_bad_placements_are_refused(placement):
    """Test the bounds of location, area and retention."""
    with pytest.raises(service.SensorError):
        service.checked_placement(placement)
