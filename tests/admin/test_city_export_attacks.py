"""The known attacks on the city export, mounted against it (docs/city-export.md,
"The attacks and why they fail"). Each test plays the city, or anyone holding its
exports, trying to learn something about one resident."""

from __future__ import annotations

import datetime as dt

import pytest

from idp.accounts import statistics
from idp.accounts.models import Resident
from idp.citydata import buckets
from idp.citydata import export
from idp.extensions import db
from tests.helpers import data_links
from tests.helpers.citydata import AT
from tests.helpers.citydata import DAY
from tests.helpers.citydata import JST
from tests.helpers.citydata import residents
from tests.helpers.citydata import touch

NEXT_DAY = DAY + dt.timedelta(days=1)


def published_sum_gap(cell) -> dict[str, int]:
    """For each breakdown, how many residents are not in a published value."""
    return {d: cell["residents"] - sum(v.values()) for d, v in cell["breakdowns"].items()}


# ---- 1. re-identification from a small cell ---------------------------------------------

def test_small_cell_reidentification_fails(kiosk_id):  # noqa: F811
    """Test the attack: "only one resident over 80 touched the kiosk at 10:00; the
    export's 80+ count is theirs, so its other cells tell me about them". The 80+ value
    is suppressed, and so is enough else that the total minus the published values is
    never fewer than k residents."""
    touch(kiosk_id, residents(10, birth_year=1990) + residents(1, birth_year=1940))
    cell = export.city_stats(DAY, DAY)["cells"][0]
    assert cell["residents"] == 11
    assert "80+" not in cell["breakdowns"].get("age_band", {})
    assert all(gap == 0 or gap >= 10 for gap in published_sum_gap(cell).values())


def test_a_pair_at_the_kiosk_learns_nothing(kiosk_id):  # noqa: F811
    """Test the attack: "I touched the kiosk at 03:00 with my target and nobody else:
    whatever the cell says that is not me is them". Fewer than k residents: the cell
    carries the touches and nothing about residents."""
    at = dt.datetime(2026, 11, 20, 3, 5, tzinfo=JST)
    touch(kiosk_id, residents(1, gender="male") + residents(1, gender="female"), at=at)
    (cell,) = export.city_stats(DAY, DAY)["cells"]
    assert cell == {"area": "北2条広場", "period": "2026-11-20T03:00:00+09:00", "touches": 2,
                    "sensors": {}, "residents": None, "left_out": None, "breakdowns": {}}


# ---- 2. homogeneity of a sensitive attribute -------------------------------------------

def _incomes(kiosk_id, bands):  # noqa: F811
    source = data_links.setup_source(keys=("income_band", "household"))
    ids = []
    for band, n in bands:
        group = residents(n)
        for rid in group:
            data_links.contribute(rid, source.company_id, source.contract_id, band,
                                  category="income_band", record_id=f"i-{rid}")
            data_links.contribute(rid, source.company_id, source.contract_id,
                                  {"members": 2}, category="household",
                                  record_id=f"h-{rid}")
        ids += group
    touch(kiosk_id, ids)


def test_homogeneous_sensitive_attribute_is_not_published(kiosk_id):  # noqa: F811
    """Test the attack: "my neighbour is among the 12 residents of this k-anonymous
    cell, and all 12 have the same income band, so I know theirs". A sensitive breakdown
    needs l distinct known values: income band and household (all 2 members) are left out;
    gender, which is not sensitive, stays."""
    _incomes(kiosk_id, [("300-500", 12)])
    cell = export.city_stats(DAY, DAY)["cells"][0]
    assert cell["residents"] == 12
    assert "income_band" not in cell["breakdowns"]
    assert "household" not in cell["breakdowns"]
    assert cell["breakdowns"]["gender"] == {"female": 12}


def test_two_values_are_not_diverse_enough(kiosk_id):  # noqa: F811
    """Test that two published income bands (l = 3) are still withheld, and three are
    published."""
    _incomes(kiosk_id, [("300-500", 10), ("500-700", 10)])
    assert "income_band" not in export.city_stats(DAY, DAY)["cells"][0]["breakdowns"]


def test_diverse_sensitive_attribute_is_published(kiosk_id):  # noqa: F811
    """Test that a sensitive breakdown with l distinct values of k residents each is
    published."""
    _incomes(kiosk_id, [("300-500", 10), ("500-700", 10), ("700-1000", 10)])
    cell = export.city_stats(DAY, DAY)["cells"][0]
    assert cell["breakdowns"]["income_band"] == {"300-500": 10, "500-700": 10,
                                                  "700-1000": 10}


# ---- 3. differencing between successive exports ----------------------------------------

def test_windows_differing_by_a_day_cannot_be_subtracted(kiosk_id):  # noqa: F811
    """Test the attack: "export the 20th, then the 20th and 21st; the difference is the
    one resident who came on the 21st". Exports are made of fixed buckets: the 20th's
    cells are the same in both, no cell spans the two days, and the 21st's cell (one
    resident) is suppressed on its own."""
    regulars = residents(10)
    touch(kiosk_id, regulars, at=AT)
    touch(kiosk_id, residents(1, gender="male"), at=AT + dt.timedelta(days=1))
    first = export.city_stats(DAY, DAY, granularity="day")["cells"]
    both = export.city_stats(DAY, NEXT_DAY, granularity="day")["cells"]
    assert [c for c in both if c["period"] == "2026-11-20"] == first
    (extra,) = [c for c in both if c["period"] == "2026-11-21"]
    assert extra["residents"] is None and extra["breakdowns"] == {}
    assert sum((c["residents"] or 0) for c in both) - sum(c["residents"] for c in first) == 0


def test_windows_cannot_be_cut_finer_than_a_bucket(kiosk_id):  # noqa: F811
    """Test that a window is whole buckets only: a week from a Tuesday, a month that
    stops a day early, or a window that includes today (still open) is refused, so no
    two windows differ by less than a bucket."""
    today = dt.datetime.now(JST).date()
    for start, end, granularity in [
            (dt.date(2026, 11, 17), dt.date(2026, 11, 23), "week"),
            (dt.date(2026, 11, 1), dt.date(2026, 11, 29), "month"),
            (today - dt.timedelta(days=1), today, "day")]:
        with pytest.raises(export.ExportError):
            export.city_stats(start, end, granularity=granularity)
    with pytest.raises(buckets.WindowError):
        buckets.check_window(DAY, DAY, "minute", today)


@pytest.mark.parametrize("change", ["opt_out", "late_touch", "record_disputed",
                                    "profile_changed"])
def test_exports_differing_by_one_resident_cannot_be_subtracted(kiosk_id, change):  # noqa: F811
    """Test the attack: "export a day, wait until one resident changes (opts out, their
    record is disputed, their profile changes, a late touch arrives), export it again,
    and subtract". The bucket was sealed by the first export: the second is identical.
    Recomputing (what the seal prevents) would have given the resident away."""
    source = data_links.setup_source(keys=("occupation",))
    ids = residents(11)
    records = [data_links.contribute(rid, source.company_id, source.contract_id,
                                     "company_employee", category="occupation",
                                     record_id=f"o-{rid}") for rid in ids]
    touch(kiosk_id, ids)
    before = export.city_stats(DAY, DAY)
    target = db.session.get(Resident, ids[0])
    if change == "opt_out":
        statistics.set_statistics_opt_out(target, True)
    elif change == "late_touch":
        touch(kiosk_id, residents(1, gender="male"), at=AT)
    elif change == "record_disputed":
        records[0].disputed_at = records[0].received_at
    else:
        target.gender = "male"
    db.session.commit()
    after = export.city_stats(DAY, DAY)
    assert after["cells"] == before["cells"]
    # The attack is real: the same bucket computed afresh differs from the seal.
    spans = buckets.buckets(DAY, DAY, "hour", dt.datetime.now(JST).date())
    fresh = export._compute(spans[10:11], dt.datetime.now(dt.UTC))[0]["areas"]["北2条広場"]
    sealed = export.seal(spans, "hour")[spans[10][0]].counts["areas"]["北2条広場"]
    assert fresh != sealed


def test_suppression_is_the_same_in_every_export(kiosk_id):  # noqa: F811
    """Test that one bucket is suppressed the same way whatever window or format it comes
    in: the cell of 10:00 in a one-day export equals the one in a three-day export."""
    touch(kiosk_id, residents(12, gender="female") + residents(3, gender="male"))
    alone = export.city_stats(DAY, DAY)["cells"]
    wider = export.city_stats(DAY - dt.timedelta(days=1), NEXT_DAY)["cells"]
    assert [c for c in wider if c["period"].startswith("2026-11-20")] == alone
    # 12 female and 3 male: "male" is hidden, so "female" is hidden with it (15 - 12).
    assert "gender" not in alone[0]["breakdowns"]


def test_a_bucket_sealed_meanwhile_is_not_sealed_twice(kiosk_id):  # noqa: F811
    """Test that when another export sealed a bucket first (two admins at once), the
    first seal stands and this export publishes from it."""
    touch(kiosk_id, residents(10))
    spans = buckets.buckets(DAY, DAY, "day", dt.datetime.now(JST).date())
    first = export._insert("day", spans[0][0], {"areas": {}, "sensitive": []},
                           dt.datetime.now(dt.UTC))
    again = export._insert("day", spans[0][0], {"areas": {"x": {}}, "sensitive": []},
                           dt.datetime.now(dt.UTC))
    assert again.id == first.id and again.counts == {"areas": {}, "sensitive": []}
    assert export.city_stats(DAY, DAY, granularity="day")["cells"] == []


# ---- 4. differencing across granularities ----------------------------------------------

def changed(kiosk_id, change, target_id, record=None):  # noqa: F811 (not the fixture)
    """One resident changes between two exports (or a late touch arrives)."""
    target = db.session.get(Resident, target_id)
    if change == "opt_out":
        statistics.set_statistics_opt_out(target, True)
    elif change == "late_touch":
        touch(kiosk_id, residents(1, gender="male"), at=AT)
    elif change == "record_disputed":
        record.disputed_at = record.received_at
    else:
        target.gender = "female"
    db.session.commit()


def only_cell(cells):
    (cell,) = [c for c in cells if c["residents"] is not None]
    return cell


@pytest.mark.parametrize("change", ["opt_out", "late_touch", "record_disputed",
                                    "profile_changed"])
def test_an_hourly_and_a_daily_export_cannot_be_subtracted(kiosk_id, change):  # noqa: F811
    """Test the attack: "10 women, 10 men and the target man touch at 10:15 only. Export
    the day hourly, let the target opt out (or change, or a late touch arrive), export
    the same day daily, and subtract: the hour says 21 (11 men), the day 20 (10 men), so
    the target was a man who opted out". The day is made of the hours as they were
    sealed: it says what the hour said. Computed afresh, it would have given them away."""
    source = data_links.setup_source(keys=("occupation",))
    women = residents(10, gender="female")
    men = residents(10, gender="male")
    (target,) = residents(1, gender="male")
    records = {rid: data_links.contribute(rid, source.company_id, source.contract_id,
                                          "company_employee", category="occupation",
                                          record_id=f"o-{rid}")
               for rid in [*women, *men, target]}
    touch(kiosk_id, [*women, *men, target])  # all at 10:15 JST, the only active hour
    hour = only_cell(export.city_stats(DAY, DAY)["cells"])
    assert hour["residents"] == 21 and hour["breakdowns"]["gender"] == {"female": 10,
                                                                        "male": 11}
    changed(kiosk_id, change, target, records[target])
    day = only_cell(export.city_stats(DAY, DAY, granularity="day")["cells"])
    assert day["residents"] == hour["residents"]
    assert day["left_out"] == hour["left_out"]
    assert day["touches"] == hour["touches"]
    assert day["breakdowns"] == hour["breakdowns"]
    # The attack is real: the day computed from the data as it stands now differs.
    spans = buckets.buckets(DAY, DAY, "day", dt.datetime.now(JST).date())
    fresh = export._compute(spans, dt.datetime.now(dt.UTC))[0]["areas"]["北2条広場"]
    sealed = export.seal(spans, "day")[spans[0][0]].counts["areas"]["北2条広場"]
    assert fresh != sealed


def test_a_daily_and_then_an_hourly_export_agree(kiosk_id):  # noqa: F811
    """Test the attack the other way round: the day first, the change, then the hours."""
    (target, *others) = residents(21, gender="male")
    touch(kiosk_id, [target, *others])
    day = only_cell(export.city_stats(DAY, DAY, granularity="day")["cells"])
    changed(kiosk_id, "opt_out", target)
    hour = only_cell(export.city_stats(DAY, DAY)["cells"])
    assert (hour["residents"], hour["left_out"], hour["breakdowns"]) == (
        day["residents"], day["left_out"], day["breakdowns"])


@pytest.mark.parametrize(("coarse", "start", "end"), [
    ("week", dt.date(2026, 11, 16), dt.date(2026, 11, 22)),
    ("month", dt.date(2026, 11, 1), dt.date(2026, 11, 30)),
])
def test_a_daily_and_a_coarser_export_cannot_be_subtracted(kiosk_id, coarse,  # noqa: F811
                                                           start, end):
    """Test the attack for week and month against day: the 20th exported daily, the
    target opts out, then the week (or month) holding it. Nobody touched on another day,
    so the week is the 20th as it was sealed."""
    women = residents(10, gender="female")
    (target, *men) = residents(11, gender="male")
    touch(kiosk_id, [*women, *men, target])
    day = only_cell(export.city_stats(DAY, DAY, granularity="day")["cells"])
    changed(kiosk_id, "opt_out", target)
    wide = only_cell(export.city_stats(start, end, granularity=coarse)["cells"])
    assert (wide["residents"], wide["left_out"], wide["breakdowns"]) == (
        day["residents"], day["left_out"], day["breakdowns"]) == (
        21, None, day["breakdowns"])
    assert day["breakdowns"]["gender"] == {"female": 10, "male": 11}


def test_a_day_counts_each_resident_once_as_first_sealed(kiosk_id):  # noqa: F811
    """Test that a resident in two hours of a day is one resident of the day, with the
    values of their first hour; an opt-out between the sealing of two days shows in the
    later day only (from then on), and the week counts them once as first sealed."""
    regulars = residents(10, gender="female")
    (target,) = residents(1, gender="male")
    touch(kiosk_id, [*regulars, target])
    touch(kiosk_id, [*regulars, target], at=AT + dt.timedelta(hours=2))
    day = only_cell(export.city_stats(DAY, DAY, granularity="day")["cells"])
    assert day["residents"] == 11 and day["touches"] == 22
    changed(kiosk_id, "opt_out", target)
    touch(kiosk_id, [*regulars, target], at=AT + dt.timedelta(days=1))
    following = only_cell(export.city_stats(NEXT_DAY, NEXT_DAY, granularity="day")["cells"])
    assert following["residents"] == 10
    week = only_cell(export.city_stats(dt.date(2026, 11, 16), dt.date(2026, 11, 22),
                                       granularity="week")["cells"])
    assert week["residents"] == 11 and week["touches"] == 33
