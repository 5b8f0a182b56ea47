"""A resident's token cannot attach touches from before the resident approved the kiosk."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.kiosk.models import TouchEvent
from tests import factories
from tests.helpers.device import approve
from tests.helpers.device import authorize
from tests.helpers.device import poll
from tests.helpers.oauth import refresh

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def kiosk(app):
    factories.resident()
    company = factories.company("C社")
    client, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条西4丁目")
    db.session.commit()
    return factories.RP(client.id, secret, company, redirect_uri="")


def device_token(client, kiosk) -> str:
    body = authorize(client, kiosk)
    approve(client, body["user_code"])
    return poll(client, kiosk, body["device_code"]).json["access_token"]


def at(moment: dt.datetime, target: str = "map") -> dict:
    return {"occurred_at": moment.isoformat(), "target": target}


def post(client, token: str, *events: dict):
    return client.post("/api/touch-events", json={"events": list(events)},
                       headers={"Authorization": f"Bearer {token}"})


def stored() -> int:
    return db.session.scalar(select(func.count()).select_from(TouchEvent))


def test_resident_touches_dated_before_the_approval_are_400(client, kiosk):
    """Test that a device-flow token cannot store a touch from before its grant, naming it."""
    with freeze_time(T0) as frozen:
        token = device_token(client, kiosk)
        frozen.tick(dt.timedelta(minutes=2))
        response = post(client, token, at(T0 + dt.timedelta(minutes=1)),
                        at(T0 - dt.timedelta(hours=1), "earlier-anonymous"))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert response.json["field"] == "events[1].occurred_at"
    assert response.json["error_description"].startswith("events[1].occurred_at: ")
    assert stored() == 0  # all or nothing


def test_resident_touches_from_the_grant_on_are_stored(client, kiosk):
    """Test that touches at and after the grant are accepted against the resident."""
    with freeze_time(T0) as frozen:
        token = device_token(client, kiosk)
        frozen.tick(dt.timedelta(minutes=2))
        response = post(client, token, at(T0), at(T0 + dt.timedelta(minutes=1)))
    assert response.status_code == 201 and response.json["stored"] == 2


def test_anonymous_kiosk_touches_keep_the_seven_day_window(client, kiosk):
    """Test that client_credentials events may still be up to seven days old."""
    with freeze_time(T0):
        token = client.post("/token", data={"grant_type": "client_credentials",
                                            "scope": "touch_events"},
                            auth=(kiosk.client_id, kiosk.client_secret)).json["access_token"]
        response = post(client, token, at(T0 - dt.timedelta(days=6, hours=23)))
    assert response.status_code == 201 and response.json["stored"] == 1


def test_a_refreshed_resident_token_keeps_its_original_grant_time(client):
    """Test that rotation does not move the bound: a refreshed token dates from the sign-in."""
    factories.resident()
    rp = factories.rp(scopes=["openid", "touch_events", "offline_access"])
    with freeze_time(T0) as frozen:
        first = factories.tokens(client, rp, scope="openid touch_events offline_access")
        frozen.tick(dt.timedelta(minutes=30))
        second = refresh(client, rp, first["refresh_token"]).json
        frozen.tick(dt.timedelta(minutes=1))
        ok = post(client, second["access_token"], at(T0 + dt.timedelta(minutes=10)))
        too_early = post(client, second["access_token"], at(T0 - dt.timedelta(minutes=10)))
    assert ok.status_code == 201
    assert too_early.status_code == 400
    assert too_early.json["field"] == "events[0].occurred_at"
