"""The de-identified city export: k-anonymous aggregates only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from idp.accounts import service as accounts
from idp.accounts import statistics
from idp.accounts.models import Resident
from idp.cli import main
from idp.extensions import db
from idp.kiosk import export
from idp.kiosk import service as kiosks
from idp.kiosk.models import TouchEvent
from tests import factories

JST = dt.timezone(dt.timedelta(hours=9))
DAY = dt.date(2026, 11, 20)


@pytest.fixture
def kiosk_id(app):
    company = factories.company("C社")
    client, _, _ = kiosks.create_kiosk(company, "サイネージ", "北2条広場")
    db.session.commit()
    return client.id


def residents(n, **profile):
    ids = []
    for _ in range(n):
        defaults = dict(birth_year=1990, gender="female", locality="札幌市中央区")
        defaults.update(profile)
        row = accounts.create_resident(f"r{len(ids)}-{factories.token(4)}@example.jp",
                                       factories.PASSWORD, accounts.Profile(**defaults))
        ids.append(row.id)
    db.session.commit()
    return ids


def touch(kiosk_id, resident_ids, at=dt.datetime(2026, 11, 20, 10, 15, tzinfo=JST), each=1):
    for resident_id in resident_ids:
        for _ in range(each):
            db.session.add(TouchEvent(client_id=kiosk_id, resident_id=resident_id,
                                      occurred_at=at, target="map"))
    db.session.commit()


def test_touches_are_counted_per_kiosk_and_hour(kiosk_id):
    """Test that touches (anonymous included) are counted per kiosk-hour in JST."""
    touch(kiosk_id, [None] * 3)
    touch(kiosk_id, [None], at=dt.datetime(2026, 11, 20, 11, 5, tzinfo=JST))
    cells = export.city_stats(DAY, DAY, k=10)["cells"]
    assert [(c["hour"], c["touches"]) for c in cells] == [
        ("2026-11-20T10:00:00+09:00", 3), ("2026-11-20T11:00:00+09:00", 1)]
    assert all(c["kiosk"] == "北2条広場" for c in cells)


def test_resident_counts_below_k_are_suppressed(kiosk_id):
    """Test that a kiosk-hour with fewer than k residents publishes touches only."""
    touch(kiosk_id, residents(9), each=2)
    cell = export.city_stats(DAY, DAY, k=10)["cells"][0]
    assert cell["touches"] == 18
    assert cell["residents"] is None and cell["breakdowns"] == {}


def test_opted_out_residents_are_in_no_breakdown(kiosk_id):
    """Test that a resident who left the city's statistics counts as an anonymous touch."""
    ids = residents(11)
    statistics.set_statistics_opt_out(db.session.get(Resident, ids[0]), True)
    db.session.commit()
    touch(kiosk_id, ids)
    cell = export.city_stats(DAY, DAY, k=10)["cells"][0]
    assert cell["touches"] == 11 and cell["residents"] == 10
    assert cell["breakdowns"]["gender"] == {"female": 10}


def test_breakdowns_at_or_above_k_are_published(kiosk_id):
    """Test that residents and breakdown cells with at least k residents are published."""
    touch(kiosk_id, residents(10))
    cell = export.city_stats(DAY, DAY, k=10)["cells"][0]
    assert cell["residents"] == 10
    assert cell["breakdowns"]["age_band"] == {"30-39": 10}
    assert cell["breakdowns"]["gender"] == {"female": 10}
    assert cell["breakdowns"]["municipality"] == {"札幌市中央区": 10}


def test_small_breakdown_cells_and_their_complement_are_suppressed(kiosk_id):
    """Test that a small cell is hidden and cannot be recovered by subtraction."""
    touch(kiosk_id, residents(12, gender="female") + residents(11, gender="male")
          + residents(2, gender="other"))
    cell = export.city_stats(DAY, DAY, k=10)["cells"][0]
    assert cell["residents"] == 25
    # "other" (2) is below k; alone it could be recovered as 25 - 12 - 11, so the
    # next smallest cell ("male", 11) is suppressed with it.
    assert cell["breakdowns"]["gender"] == {"female": 12}


def test_suppress_function():
    """Test primary and complementary suppression on plain counts."""
    assert export.suppress({"a": 12, "b": 11, "c": 2}, 10) == {"a": 12}
    assert export.suppress({"a": 12, "b": 11, "c": 10}, 10) == {"a": 12, "b": 11, "c": 10}
    assert export.suppress({"a": 30, "b": 3, "c": 8}, 10) == {"a": 30}
    assert export.suppress({"a": 9}, 10) == {}


def test_age_bands_from_birth_year():
    """Test ten-year age bands computed from the birth year alone."""
    assert export.age_band(1990, 2026) == "30-39"
    assert export.age_band(2020, 2026) == "0-9"
    assert export.age_band(1930, 2026) == "80+"
    assert export.age_band(None, 2026) == "unknown"


def test_nothing_identifying_leaves(kiosk_id):
    """Test that no resident id, sub, email, raw timestamp or content id is exported."""
    ids = residents(10)
    touch(kiosk_id, ids)
    text = json.dumps(export.city_stats(DAY, DAY, k=10), ensure_ascii=False)
    emails = db.session.scalars(select(Resident.email)).all()
    for secret in [*ids, *emails, "map", "10:15", kiosk_id]:
        assert secret not in text


def test_range_is_inclusive_and_in_jst(kiosk_id):
    """Test that --from/--to are local (JST) days, both included."""
    touch(kiosk_id, [None], at=dt.datetime(2026, 11, 19, 23, 59, tzinfo=JST))
    touch(kiosk_id, [None], at=dt.datetime(2026, 11, 20, 0, 0, tzinfo=JST))
    touch(kiosk_id, [None], at=dt.datetime(2026, 11, 21, 0, 0, tzinfo=JST))
    assert sum(c["touches"] for c in export.city_stats(DAY, DAY, 10)["cells"]) == 1


def _cli(migrated, *args):
    env = {"IDP_DATABASE_URL": migrated, "IDP_ENVIRONMENT": "test",
           "IDP_ISSUER": "http://localhost"}
    db.session.commit()
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_cli_csv_and_json(kiosk_id, migrated):
    """Test `idp export city-stats` in both formats with --k."""
    touch(kiosk_id, residents(3))
    result = _cli(migrated, "export", "city-stats", "--from", "2026-11-20", "--to",
                  "2026-11-20", "--format", "json", "--k", "3")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["k"] == 3 and data["cells"][0]["residents"] == 3
    result = _cli(migrated, "export", "city-stats", "--from", "2026-11-20", "--to",
                  "2026-11-20", "--format", "csv")
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == ["kiosk", "hour", "measure", "dimension", "value", "count"]
    assert rows[1:] == [["北2条広場", "2026-11-20T10:00:00+09:00", "touches", "", "", "3"]]


def test_cli_refuses_bad_ranges_and_k(migrated, app):
    """Test that a reversed range or k < 2 fails with a message, not a traceback."""
    result = _cli(migrated, "export", "city-stats", "--from", "2026-11-21", "--to", "2026-11-20")
    assert result.exit_code != 0 and "--to" in result.output
    result = _cli(migrated, "export", "city-stats", "--from", "2026-11-20", "--to",
                  "2026-11-20", "--k", "1")
    assert result.exit_code != 0
    result = _cli(migrated, "export", "city-stats", "--from", "20.11.2026", "--to",
                  "2026-11-20")
    assert result.exit_code != 0


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
    rows = list(csv.reader(io.StringIO(export.to_csv(export.city_stats(DAY, DAY, k=10)))))
    cells = [cell for row in rows[1:] for cell in row]
    assert f"'{start}HYPERLINK(\"x\")" in cells
    assert f"'{start}cmd|' /C calc'!A0" in cells
    assert f"'{locality}" in cells or not start.isprintable()
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
