"""The dashboard's numbers: per day and hour in Japan time, consents replayed from the trail."""

from __future__ import annotations

import datetime as dt

from freezegun import freeze_time

from idp.accounts.models import Resident
from idp.admin import charts
from idp.admin import stats
from idp.clients import service as clients
from idp.consent import service as consent_service
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.kiosk.models import TouchEvent
from tests import factories
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.oauth import tokens_for

JST = dt.timezone(dt.timedelta(hours=9))


def at_jst(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), JST).astimezone(dt.UTC)


def test_consents_in_force_per_company_and_day(app):
    """Test that a consent counts from its grant to its withdrawal, at the end of each day."""
    today = stats.today()
    resident = factories.resident()
    rp = factories.rp()
    other = factories.rp(factories.company("B社"))
    client = clients.get_client(rp.client_id)
    with freeze_time(at_jst(today - dt.timedelta(days=3), 10)):
        consent_service.grant(db.session.get(Resident, resident.id), client, ["openid"],
                              ["openid"])
        consent_service.grant(db.session.get(Resident, resident.id),
                              clients.get_client(other.client_id), ["openid"], ["openid"])
        db.session.commit()
    with freeze_time(at_jst(today - dt.timedelta(days=1), 23, 59)):
        consent_service.withdraw(resident.id, rp.client_id)
        db.session.commit()
    counts = stats.active_consents_per_company(today - dt.timedelta(days=4), today)
    assert counts[rp.company_id] == [0, 1, 1, 0, 0]
    assert counts[other.company_id] == [0, 1, 1, 1, 1]


def test_consent_expires_without_renewal(app):
    """Test that a consent older than consent_ttl_days no longer counts."""
    today = stats.today()
    factories.resident()
    rp = factories.rp()
    with freeze_time(at_jst(today - dt.timedelta(days=400), 12)):
        consent_service.grant(db.session.scalar(db.select(Resident)),
                              clients.get_client(rp.client_id), ["openid"], ["openid"])
        db.session.commit()
    counts = stats.active_consents_per_company(today - dt.timedelta(days=2), today)
    assert counts.get(rp.company_id, [0, 0, 0]) == [0, 0, 0]


def test_days_are_japan_days(app):
    """Test that an event at 23:30 UTC counts for the next day in Japan."""
    today = stats.today()
    with freeze_time(at_jst(today, 8, 30)):  # 23:30 UTC the day before
        factories.resident()
    residents = stats.residents_per_day(today - dt.timedelta(days=1), today)
    assert residents == [0, 1]


def test_touches_per_kiosk_and_hour(app):
    """Test the heatmap's counts: per kiosk, per Japan hour of the chosen day."""
    today = stats.today()
    company_id = factories.company("C社")
    first, _, _ = kiosks.create_kiosk(company_id, "北2条", "北2条西4丁目")
    second, _, _ = kiosks.create_kiosk(company_id, "大通", "大通西3丁目")
    for when, kiosk in [(at_jst(today, 9, 5), first), (at_jst(today, 9, 50), first),
                        (at_jst(today, 18, 0), second),
                        (at_jst(today - dt.timedelta(days=1), 9, 0), first)]:
        db.session.add(TouchEvent(client_id=kiosk.id, occurred_at=when, target="map"))
    db.session.commit()
    rows = {k.client_id: counts for k, counts in stats.touches_per_kiosk_hour(today)}
    assert rows[first.id][9] == 2 and sum(rows[first.id]) == 2
    assert rows[second.id][18] == 1 and sum(rows[second.id]) == 1


def test_tokens_and_failed_sign_ins_per_day(client):
    """Test the per-day counts of token issuance and failed sign-ins."""
    factories.resident()
    rp = factories.rp()
    tokens_for(client, rp, "openid")
    page = client.get("/login")
    client.post("/login", data={"email": "hanako@example.jp", "password": "wrong-password",
                                "csrf_token": factories.csrf(page.text)})
    today = stats.today()
    assert stats.events_per_day(stats.TOKEN_TAGS, today, today) == [1]
    assert stats.events_per_day(stats.RESIDENT_LOGIN_FAILURES, today, today) == [1]


def test_charts_escape_names_and_scale(app):
    """Test that a company name cannot inject markup and that values scale to the axis."""
    svg = charts.bars("T", "D", ["a", "b"], [("<script>x</script>", [3, 7])], "data")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    line = charts.lines("T", "D", ["a", "b"], [("s", [0, 10])], "data")
    assert 'points="' in line and "<td>10</td>" in line


def test_dashboard_period_choice(client):
    """Test that the period selector draws 7 or 90 days and ignores anything else."""
    AdminBrowser(client, enrolled_admin()).login()
    assert client.get("/admin/", query_string={"days": 90}).status_code == 200
    assert client.get("/admin/", query_string={"days": 5000}).status_code == 200
    assert client.get("/admin/", query_string={"day": "not-a-date"}).status_code == 200
