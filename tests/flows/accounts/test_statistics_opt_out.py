"""Opting out of the city's statistics: at /account and at registration, audited, and a
condition exports filter on (idp.accounts.statistics)."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.accounts import statistics
from idp.accounts.models import Resident
from idp.extensions import db
from tests import factories
from tests.helpers.accounts import complete
from tests.helpers.accounts import post_form
from tests.helpers.accounts import registration_link
from tests.helpers.accounts import request_link
from tests.helpers.accounts import sign_in
from tests.helpers.accounts import tags

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def resident(app):
    row = factories.resident()
    db.session.commit()
    return row


def choose(client, opt_out: bool):
    return post_form(client, "/account", {"statistics_opt_out": "yes" if opt_out else ""},
                     action="/account/statistics")


def test_a_resident_is_in_the_statistics_by_default(client, resident):
    """Test the default: counted, and the page offers to leave."""
    sign_in(client)
    page = client.get("/account")
    assert page.status_code == 200
    assert 'action="/account/statistics"' in page.text
    assert not statistics.statistics_opt_out(resident)


def test_opting_out_at_the_account_is_recorded_and_audited(client, resident):
    """Test that the choice is stored with its time, audited, and shown."""
    with freeze_time(T0):
        sign_in(client)
        response = choose(client, True)
        page = client.get("/account")
    assert response.status_code == 303
    db.session.refresh(resident)
    assert statistics.statistics_opt_out(resident)
    assert resident.statistics_opt_out_at == T0
    (event,) = tags("resident:statistics:opt_out")
    assert event.resident_id == resident.id and event.data == {"via": "account"}
    assert 'value=""' in page.text  # the form now offers to come back in


def test_opting_back_in(client, resident):
    """Test that the resident can come back into the statistics, audited too."""
    sign_in(client)
    choose(client, True)
    choose(client, False)
    db.session.refresh(resident)
    assert not statistics.statistics_opt_out(resident)
    assert [e.tag for e in tags("resident:statistics:opt_out", "resident:statistics:opt_in")] \
        == ["resident:statistics:opt_out", "resident:statistics:opt_in"]


def test_the_same_choice_twice_changes_nothing(client, resident):
    """Test that repeating a choice keeps the first time and adds no audit event."""
    with freeze_time(T0) as frozen:
        sign_in(client)
        choose(client, True)
        frozen.tick(dt.timedelta(hours=1))
        choose(client, True)
    db.session.refresh(resident)
    assert resident.statistics_opt_out_at == T0
    assert len(tags("resident:statistics:opt_out")) == 1


def test_the_choice_needs_a_signed_in_resident_and_csrf(client, resident):
    """Test that a post without a session or without a CSRF token changes nothing."""
    anonymous = client.post("/account/statistics", data={"statistics_opt_out": "yes"})
    assert anonymous.status_code == 400  # the CSRF check comes before the sign-in check
    token = factories.csrf(client.get("/login").text)
    signed_out = client.post("/account/statistics",
                             data={"statistics_opt_out": "yes", "csrf_token": token})
    assert signed_out.status_code == 303
    assert signed_out.headers["Location"].startswith("/login?next=")
    sign_in(client)
    forged = client.post("/account/statistics", data={"statistics_opt_out": "yes"})
    assert forged.status_code == 400
    db.session.refresh(resident)
    assert not statistics.statistics_opt_out(resident)
    assert tags("resident:statistics:opt_out") == []


def test_opting_out_at_registration(client):
    """Test that the registration form's box leaves the new resident out from the start."""
    request_link(client)
    response = complete(client, registration_link(), statistics_opt_out="yes")
    assert response.status_code == 302, response.text
    row = db.session.scalar(select(Resident).where(Resident.email == "taro@example.jp"))
    assert statistics.statistics_opt_out(row)
    (event,) = tags("resident:statistics:opt_out")
    assert event.data == {"via": "registration"}


def test_registration_without_the_box_stays_in(client):
    """Test that leaving the box unticked keeps the default."""
    request_link(client)
    complete(client, registration_link())
    row = db.session.scalar(select(Resident).where(Resident.email == "taro@example.jp"))
    assert not statistics.statistics_opt_out(row)
    assert tags("resident:statistics:opt_out") == []


def test_a_refused_registration_form_keeps_the_box_ticked(client):
    """Test that the form shown again with errors remembers the choice."""
    request_link(client)
    response = complete(client, registration_link(), statistics_opt_out="yes",
                        agree_terms=None)
    assert response.status_code == 400
    assert 'id="statistics_opt_out" name="statistics_opt_out" value="yes" checked' \
        in response.text


def test_exports_filter_on_the_condition(app):
    """Test the condition an export uses: opted-out residents are left out."""
    counted = factories.resident("a@example.jp")
    left_out = factories.resident("b@example.jp")
    statistics.set_statistics_opt_out(db.session.get(Resident, left_out.id), True)
    db.session.flush()
    ids = set(db.session.scalars(select(Resident.id).where(statistics.opted_in())))
    assert counted.id in ids and left_out.id not in ids
    assert set(db.session.scalars(select(Resident.id).where(statistics.opted_out()))) \
        == {left_out.id}


def test_the_data_export_shows_the_choice(client, resident):
    """Test that the resident's own data export includes when they opted out."""
    with freeze_time(T0):
        sign_in(client)
        choose(client, True)
        data = client.get("/account/export").json
    assert data["account"]["statistics_opt_out_at"].startswith("2026-12-01T10:00:00")


def test_an_unknown_via_is_refused(app):
    """Test that the domain function accepts only the two places a choice is made."""
    row = factories.resident()
    with pytest.raises(ValueError):
        statistics.set_statistics_opt_out(row, True, via="admin")
