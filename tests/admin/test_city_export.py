"""The downtown database export: touches, sensor counts and de-identified breakdowns per
area and time bucket (idp.citydata.export; docs/city-export.md)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import select

from idp.accounts import statistics
from idp.accounts.models import Resident
from idp.citydata import attributes
from idp.citydata import buckets
from idp.citydata import export
from idp.citydata.models import CityContribution
from idp.citydata.models import CitySeal
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.sensors import service as sensors
from idp.sensors.models import SensorCount
from tests import factories
from tests.helpers import data_links
from tests.helpers.citydata import AT
from tests.helpers.citydata import DAY
from tests.helpers.citydata import JST
from tests.helpers.citydata import residents
from tests.helpers.citydata import touch


def stats(start=DAY, end=DAY, **options):
    return export.city_stats(start, end, **options)


def test_touches_are_counted_per_area_and_hour(kiosk_id):
    """Test that touches (anonymous included) are counted per area-hour in JST."""
    touch(kiosk_id, [None] * 3)
    touch(kiosk_id, [None], at=dt.datetime(2026, 11, 20, 11, 5, tzinfo=JST))
    cells = stats()["cells"]
    assert [(c["period"], c["touches"]) for c in cells] == [
        ("2026-11-20T10:00:00+09:00", 3), ("2026-11-20T11:00:00+09:00", 1)]
    assert all(c["area"] == "北2条広場" for c in cells)


def test_sensor_counts_by_direction_share_the_area(app, kiosk_id):
    """Test that a sensor at the kiosk's location adds its counts per direction to the
    same area and bucket; counts of passers-by are not suppressed (no person in them)."""
    company = factories.company("D社")
    client, _, _ = sensors.create_sensor(company, "人流センサー",
                                         sensors.Placement(location="北2条広場"))
    for minute, direction, count in [(0, "in", 3), (15, "in", 2), (0, "out", 1)]:
        db.session.add(SensorCount(client_id=client.id, interval_seconds=900,
                                   interval_start=AT.replace(minute=minute),
                                   direction=direction, count=count))
    db.session.commit()
    touch(kiosk_id, [None])
    (cell,) = stats()["cells"]
    assert cell["sensors"] == {"in": 5, "out": 1} and cell["touches"] == 1


def test_granularity_day_week_month(kiosk_id):
    """Test that buckets can be days, ISO weeks (Monday to Sunday) and months."""
    touch(kiosk_id, [None], at=dt.datetime(2026, 11, 16, 9, tzinfo=JST))   # a Monday
    touch(kiosk_id, [None], at=dt.datetime(2026, 11, 22, 23, tzinfo=JST))  # its Sunday
    week = stats(dt.date(2026, 11, 16), dt.date(2026, 11, 22), granularity="week")
    assert [(c["period"], c["touches"]) for c in week["cells"]] == [("2026-W47", 2)]
    days = stats(dt.date(2026, 11, 16), dt.date(2026, 11, 22), granularity="day")
    assert [c["period"] for c in days["cells"]] == ["2026-11-16", "2026-11-22"]
    month = stats(dt.date(2026, 11, 1), dt.date(2026, 11, 30), granularity="month")
    assert [(c["period"], c["touches"]) for c in month["cells"]] == [("2026-11", 2)]


def test_resident_counts_below_k_are_suppressed(kiosk_id):
    """Test that an area-bucket with fewer than k residents publishes touches only."""
    touch(kiosk_id, residents(9), each=2)
    cell = stats()["cells"][0]
    assert cell["touches"] == 18
    assert cell["residents"] is None and cell["breakdowns"] == {}


def test_breakdowns_at_or_above_k_are_published(kiosk_id):
    """Test that residents and breakdown cells with at least k residents are published."""
    touch(kiosk_id, residents(10))
    cell = stats()["cells"][0]
    assert cell["residents"] == 10
    assert cell["breakdowns"]["age_band"] == {"30-39": 10}
    assert cell["breakdowns"]["gender"] == {"female": 10}
    assert cell["breakdowns"]["municipality"] == {"札幌市中央区": 10}


def test_registered_data_with_statistics_feeds_breakdowns(kiosk_id):
    """Test that registered values of categories with statistics=True are broken down
    (latest record), and expired, disputed and non-statistics records are not."""
    source = data_links.setup_source(keys=("language", "occupation", "service_usage",
                                           "prefecture"))
    ids = residents(12)
    for n, rid in enumerate(ids):
        data_links.contribute(rid, source.company_id, source.contract_id, "ja",
                              record_id=f"l{n}")
        data_links.contribute(rid, source.company_id, source.contract_id,
                              {"prefecture": "北海道", "city": "札幌市"},
                              category="prefecture", record_id=f"p{n}")
        data_links.contribute(rid, source.company_id, source.contract_id,
                              {"service": "bus"}, category="service_usage",
                              record_id=f"s{n}")
    # An older record is replaced by the newer one; expired and disputed ones never count.
    data_links.contribute(ids[0], source.company_id, source.contract_id, "en",
                          record_id="old", collected_at=dt.datetime(2020, 1, 1, tzinfo=JST))
    for n, rid in enumerate(ids[:3]):
        data_links.contribute(rid, source.company_id, source.contract_id, "student",
                              category="occupation", record_id=f"o{n}",
                              expires_in=dt.timedelta(seconds=-1))
    disputed = data_links.contribute(ids[3], source.company_id, source.contract_id,
                                     "retired", category="occupation", record_id="od")
    disputed.disputed_at = disputed.received_at
    db.session.commit()
    touch(kiosk_id, ids)
    breakdowns = stats()["cells"][0]["breakdowns"]
    assert breakdowns["language"] == {"ja": 12}
    assert breakdowns["prefecture"] == {"北海道/札幌市": 12}
    assert breakdowns["occupation"] == {"unknown": 12}
    assert "service_usage" not in breakdowns


def test_opted_out_residents_are_in_no_breakdown(kiosk_id):
    """Test that a resident who left the city's statistics counts only as a touch."""
    ids = residents(11)
    statistics.set_statistics_opt_out(db.session.get(Resident, ids[0]), True)
    db.session.commit()
    touch(kiosk_id, ids)
    cell = stats()["cells"][0]
    assert cell["touches"] == 11 and cell["residents"] == 10
    assert cell["breakdowns"]["gender"] == {"female": 10}
    assert cell["left_out"] is None  # 1 < k: how many left is itself not published


def test_left_out_is_published_only_from_k(kiosk_id):
    """Test that the number of opted-out residents appears once it is at least k."""
    ids = residents(10)
    for rid in ids:
        statistics.set_statistics_opt_out(db.session.get(Resident, rid), True)
    db.session.commit()
    touch(kiosk_id, ids)
    cell = stats()["cells"][0]
    assert cell["left_out"] == 10 and cell["residents"] is None


def test_small_breakdown_cells_and_their_complement_are_suppressed(kiosk_id):
    """Test that a small cell is hidden and cannot be recovered by subtraction."""
    touch(kiosk_id, residents(12, gender="female") + residents(11, gender="male")
          + residents(2, gender="other"))
    cell = stats()["cells"][0]
    assert cell["residents"] == 25
    # "other" (2) is below k; alone it could be recovered as 25 - 12 - 11, so the
    # next smallest cell ("male", 11) is suppressed with it.
    assert cell["breakdowns"]["gender"] == {"female": 12}


def test_registered_values_as_breakdown_values():
    """Test how registered values become breakdown values."""
    assert attributes.values("household", {"members": 7, "children": 2}) == ["5+"]
    assert attributes.values("household", {"members": 2}) == ["2"]
    assert attributes.values("prefecture", {"prefecture": "北海道"}) == ["北海道"]
    assert attributes.values("interests", ["b", "a", "a"]) == ["a", "b"]
    assert attributes.values("other", {"x": 1}) == []
    assert attributes.values("flag", True) == ["yes"]


def test_age_bands_from_birth_year():
    """Test ten-year age bands computed from the birth year alone."""
    assert attributes.age_band(1990, 2026) == "30-39"
    assert attributes.age_band(2020, 2026) == "0-9"
    assert attributes.age_band(1930, 2026) == "80+"
    assert attributes.age_band(None, 2026) == "unknown"


def test_nothing_identifying_leaves(kiosk_id):
    """Test that no resident id, email, raw timestamp or content id is exported or
    sealed."""
    ids = residents(10)
    touch(kiosk_id, ids)
    text = json.dumps(stats(), ensure_ascii=False)
    sealed = json.dumps([s.counts for s in db.session.scalars(select(CitySeal))],
                        ensure_ascii=False)
    emails = db.session.scalars(select(Resident.email)).all()
    for secret in [*ids, *emails, "map", "10:15", kiosk_id]:
        assert secret not in text and secret not in sealed


def test_range_is_inclusive_and_in_jst(kiosk_id):
    """Test that --from/--to are local (JST) days, both included."""
    touch(kiosk_id, [None], at=dt.datetime(2026, 11, 19, 23, 59, tzinfo=JST))
    touch(kiosk_id, [None], at=dt.datetime(2026, 11, 20, 0, 0, tzinfo=JST))
    touch(kiosk_id, [None], at=dt.datetime(2026, 11, 21, 0, 0, tzinfo=JST))
    assert sum(c["touches"] for c in stats(granularity="day")["cells"]) == 1


@pytest.mark.parametrize(("k", "l_diversity"), [(9, None), (None, 2), (1, None)])
def test_k_and_l_cannot_go_below_the_settings(app, k, l_diversity):
    """Test that an export may ask a stricter k or l, never a laxer one."""
    with pytest.raises(export.ExportError):
        stats(k=k, l_diversity=l_diversity)


def test_exports_are_audited(kiosk_id):
    """Test that each export leaves an audit event with its parameters."""
    from idp.audit.models import AuditEvent
    stats(k=12, granularity="day")
    db.session.commit()
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.tag == "city:export")).one()
    assert event.data["k"] == 12 and event.data["granularity"] == "day"


def test_cli_csv_and_json(kiosk_id, cli):
    """Test `idp export city-stats` in both formats, with --k and --granularity."""
    touch(kiosk_id, residents(12))
    result = cli("export", "city-stats", "--from", "2026-11-20", "--to", "2026-11-20",
                 "--format", "json", "--k", "12", "--granularity", "day")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["k"] == 12 and data["l"] == 3 and data["cells"][0]["residents"] == 12
    result = cli("export", "city-stats", "--from", "2026-11-20", "--to", "2026-11-20",
                 "--format", "csv", "--k", "13")
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == ["area", "period", "measure", "dimension", "value", "count"]
    assert rows[1:] == [["北2条広場", "2026-11-20T10:00:00+09:00", "touches", "", "", "12"]]


@pytest.mark.parametrize("args", [
    ("--from", "2026-11-21", "--to", "2026-11-20"),
    ("--from", "2026-11-20", "--to", "2026-11-20", "--k", "1"),
    ("--from", "2026-11-20", "--to", "2026-11-20", "--k", "3"),
    ("--from", "20.11.2026", "--to", "2026-11-20"),
    ("--from", "2026-11-17", "--to", "2026-11-22", "--granularity", "week"),
    ("--from", "2026-11-01", "--to", "2026-11-29", "--granularity", "month"),
    ("--from", "2026-11-20", "--to", "2099-01-01"),
])
def test_cli_refuses_bad_windows_and_k(cli, args):
    """Test that a reversed, unclosed or misaligned window and a k below the floor fail
    with a message, not a traceback."""
    result = cli("export", "city-stats", *args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_neutralises_formula_cells(app, start):
    """Test that kiosk names, locations and municipalities a spreadsheet would run as a
    formula (OWASP CSV injection) leave the city CSV prefixed with a quote."""
    company = factories.company("C社")
    located, _, kiosk = kiosks.create_kiosk(company, "サイネージ", "北2条広場")
    kiosk.location = f"{start}HYPERLINK(\"x\")"  # set directly: the forms strip whitespace
    unlocated, _, kiosk = kiosks.create_kiosk(company, "案内板", "仮")
    unlocated.name = f"{start}cmd|' /C calc'!A0"
    kiosk.location = ""  # the export falls back to the kiosk's name
    db.session.commit()
    # Residents' profiles refuse control characters; the other starts can come from them.
    locality = f"{start}SUM(1+1)" if start.isprintable() else "札幌市中央区"
    touch(located.id, residents(10, locality=locality))
    touch(unlocated.id, [None])
    rows = list(csv.reader(io.StringIO(export.to_csv(stats()))))
    cells = [cell for row in rows[1:] for cell in row]
    assert f"'{start}HYPERLINK(\"x\")" in cells
    assert f"'{start}cmd|' /C calc'!A0" in cells
    assert f"'{locality}" in cells or not start.isprintable()
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)


def test_sealed_hours_freeze_their_residents_under_a_pseudonym(kiosk_id):
    """Test that sealing an hour keeps, per resident behind its touches, a keyed
    pseudonym (the same in every hour, never their id) and their values then; an
    opted-out resident is kept without values."""
    ids = residents(2)
    statistics.set_statistics_opt_out(db.session.get(Resident, ids[1]), True)
    db.session.commit()
    touch(kiosk_id, ids)
    touch(kiosk_id, ids[:1], at=AT + dt.timedelta(hours=1))
    stats()
    rows = db.session.scalars(select(CityContribution).order_by(
        CityContribution.hour_start, CityContribution.person)).all()
    assert len(rows) == 3 and {r.area for r in rows} == {"北2条広場"}
    people = {r.person for r in rows}
    assert people == {export.pseudonym(ids[0]), export.pseudonym(ids[1])}
    assert not people & set(ids)
    first = export.pseudonym(ids[0])
    assert [r.values["gender"] for r in rows if r.person == first] == [["female"]] * 2
    assert [r.values for r in rows if r.person != first] == [None]


def test_an_hour_sealed_before_contributions_gets_them_once(kiosk_id):
    """Test that an hour sealed by the previous method (no contributions) keeps its
    published counts, and gets its contributions frozen once, at its first coarser use."""
    touch(kiosk_id, residents(10))
    spans = buckets.buckets(DAY, DAY, "hour", dt.datetime.now(JST).date())
    now = dt.datetime.now(dt.UTC)
    counts = export._compute(spans[10:11], now)[0]
    db.session.add(CitySeal(granularity="hour", bucket_start=spans[10][0], counts=counts,
                            method=1, sealed_at=now))
    db.session.commit()
    day = stats(granularity="day")["cells"]
    assert [c["residents"] for c in day] == [10]
    assert db.session.scalar(select(CitySeal).where(
        CitySeal.bucket_start == spans[10][0], CitySeal.granularity == "hour")).method == 2
    assert len(db.session.scalars(select(CityContribution)).all()) == 10
    stats(granularity="day")
    stats(DAY, DAY + dt.timedelta(days=1), granularity="day")
    assert len(db.session.scalars(select(CityContribution)).all()) == 10
