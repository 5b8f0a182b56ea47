"""The demo shows the city's export: yesterday at the square, seeded by ``idp demo seed``."""

from __future__ import annotations

import datetime as dt

from idp.citydata import export
from idp.cli import demo
from idp.extensions import db


def test_demo_seeds_a_day_the_export_can_show(app, tmp_path, monkeypatch):
    """Test that the demo's seeded day exports touches, sensor counts and, at noon, a
    k-anonymous breakdown of the 24 demo residents; seeding again adds nothing."""
    monkeypatch.setattr(demo, "STATE_FILE", tmp_path / "demo.json")
    state = demo.seed_demo()
    db.session.commit()
    day = dt.date.fromisoformat(state["city_day"])
    assert demo.seed_demo()["city_day"] == state["city_day"]
    db.session.commit()
    hours = export.city_stats(day, day)["cells"]
    noon = [c for c in hours if c["period"].endswith("T12:00:00+09:00") and c["residents"]]
    (cell,) = [c for c in noon if c["area"].startswith("札幌駅前通")]
    assert cell["residents"] == 24 and cell["breakdowns"]["gender"] == {"female": 12, "male": 12}
    (sensor,) = [c for c in hours if c["area"].endswith("北側入口")
                 and c["period"].endswith("T12:00:00+09:00")]
    assert set(sensor["sensors"]) == {"in", "out"}
    (whole,) = [c for c in export.city_stats(day, day, granularity="day")["cells"]
                if c["area"].startswith("札幌駅前通") and c["residents"]]
    assert whole["residents"] == 24
