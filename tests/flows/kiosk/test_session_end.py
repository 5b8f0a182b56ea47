"""A resident's session at a kiosk ends: idle timeout, maximum length, and "end" at the
kiosk (the device token revoked at /revoke). Touches after the end are refused for the
resident; the vendor cannot stretch the session (the token lives no longer than the max)."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from idp import config
from idp.access.models import Token
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.kiosk.models import TouchEvent
from tests import factories
from tests.helpers.device import approve
from tests.helpers.device import authorize
from tests.helpers.device import poll

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def kiosk(app):
    factories.resident()
    company = factories.company("C社")
    client, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条西4丁目")
    db.session.commit()
    return factories.RP(client.id, secret, company, redirect_uri="")


def device_grant(client, kiosk) -> dict:
    body = authorize(client, kiosk)
    approve(client, body["user_code"])
    response = poll(client, kiosk, body["device_code"])
    assert response.status_code == 200, response.text
    return response.json


def at(moment: dt.datetime, target: str = "map") -> dict:
    return {"occurred_at": moment.isoformat(), "target": target}


def post(client, token: str, *events: dict):
    return client.post("/api/touch-events", json={"events": list(events)},
                       headers={"Authorization": f"Bearer {token}"})


def resident_touches() -> int:
    return db.session.scalar(select(func.count()).select_from(TouchEvent)
                             .where(TouchEvent.resident_id.is_not(None)))


def test_the_device_token_lives_no_longer_than_the_maximum_session(client, kiosk):
    """Test that expires_in of a device-flow token is capped at kiosk_max_session."""
    settings = config.settings()
    assert settings.kiosk_max_session < settings.access_token_ttl
    with freeze_time(T0):
        token = device_grant(client, kiosk)
    assert token["expires_in"] == settings.kiosk_max_session
    row = db.session.scalar(select(Token).where(Token.grant_type == kiosks.DEVICE_CODE))
    assert row.access_expires_at - row.issued_at == dt.timedelta(
        seconds=settings.kiosk_max_session)


def test_client_credentials_tokens_keep_the_ordinary_lifetime(client, kiosk):
    """Test that the cap is only for a resident's session (client_credentials unchanged)."""
    answer = client.post("/token", data={"grant_type": "client_credentials",
                                         "scope": "touch_events"},
                         auth=(kiosk.client_id, kiosk.client_secret))
    assert answer.json["expires_in"] == config.settings().access_token_ttl


def test_touches_within_the_idle_timeout_are_the_residents(client, kiosk):
    """Test that touches each within the idle timeout of the last are stored."""
    idle = config.settings().kiosk_idle_timeout
    with freeze_time(T0) as frozen:
        token = device_grant(client, kiosk)["access_token"]
        frozen.tick(dt.timedelta(seconds=idle - 1))
        first = post(client, token, at(T0 + dt.timedelta(seconds=idle - 1)))
        frozen.tick(dt.timedelta(seconds=idle - 1))
        second = post(client, token, at(T0 + dt.timedelta(seconds=2 * idle - 2)))
    assert (first.status_code, second.status_code) == (201, 201)
    assert resident_touches() == 2


def test_a_touch_after_the_idle_timeout_is_refused_and_ends_the_session(client, kiosk):
    """Test that a touch after idle is 400 naming it, nothing is stored, and the token dies."""
    idle = config.settings().kiosk_idle_timeout
    with freeze_time(T0) as frozen:
        token = device_grant(client, kiosk)["access_token"]
        frozen.tick(dt.timedelta(seconds=30))
        assert post(client, token, at(T0 + dt.timedelta(seconds=30))).status_code == 201
        late = T0 + dt.timedelta(seconds=30 + idle + 1)
        frozen.move_to(late)
        refused = post(client, token, at(late - dt.timedelta(seconds=idle + 1)), at(late))
        after = post(client, token, at(late))
    assert refused.status_code == 400
    assert refused.json["error"] == "invalid_request"
    assert refused.json["field"] == "events[1].occurred_at"
    assert refused.json["session_ended"] == "idle"
    assert "session at this kiosk ended" in refused.json["error_description"]
    assert resident_touches() == 1  # all or nothing: the first touch of the batch is not kept
    assert after.status_code == 401 and after.json["error"] == "invalid_token"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.tag == "kiosk:session:end"))
    assert event.data["reason"] == "idle" and event.data["tokens_revoked"] == 1


def test_the_idle_gap_counts_inside_one_batch(client, kiosk):
    """Test that a batch sent late but dated in order is checked gap by gap."""
    idle = config.settings().kiosk_idle_timeout
    with freeze_time(T0) as frozen:
        token = device_grant(client, kiosk)["access_token"]
        frozen.tick(dt.timedelta(seconds=3 * idle))
        response = post(client, token, at(T0 + dt.timedelta(seconds=idle * 2)),
                        at(T0 + dt.timedelta(seconds=10)))
    assert response.status_code == 400
    assert response.json["field"] == "events[0].occurred_at"


def test_a_touch_after_the_maximum_length_is_refused(client, kiosk):
    """Test that an active resident's touches stop at kiosk_max_session after approval."""
    settings = config.settings()
    step = settings.kiosk_idle_timeout - 1
    with freeze_time(T0) as frozen:
        token = device_grant(client, kiosk)["access_token"]
        moment = T0
        while moment + dt.timedelta(seconds=step) <= T0 + dt.timedelta(
                seconds=settings.kiosk_max_session):
            moment += dt.timedelta(seconds=step)
            frozen.move_to(moment)
            assert post(client, token, at(moment)).status_code == 201
        beyond = T0 + dt.timedelta(seconds=settings.kiosk_max_session + 1)
        frozen.move_to(beyond - dt.timedelta(seconds=2))  # the token itself is still alive
        response = post(client, token, at(beyond))
    assert response.status_code == 400
    assert response.json["session_ended"] == "max_length"


def test_the_token_is_dead_after_the_maximum_length(client, kiosk):
    """Test that the vendor cannot keep using the token past kiosk_max_session."""
    settings = config.settings()
    with freeze_time(T0) as frozen:
        token = device_grant(client, kiosk)["access_token"]
        frozen.tick(dt.timedelta(seconds=settings.kiosk_max_session + 1))
        response = post(client, token, at(T0 + dt.timedelta(seconds=60)))
    assert response.status_code == 401


def test_end_at_the_kiosk_revokes_the_token_and_refuses_later_touches(client, kiosk):
    """Test that the kiosk's revocation at /revoke ends the session (RFC 7009)."""
    with freeze_time(T0) as frozen:
        token = device_grant(client, kiosk)["access_token"]
        revoked = client.post("/revoke", data={"token": token,
                                               "token_type_hint": "access_token"},
                              auth=(kiosk.client_id, kiosk.client_secret))
        frozen.tick(dt.timedelta(seconds=5))
        response = post(client, token, at(T0 + dt.timedelta(seconds=5)))
    assert revoked.status_code == 200
    assert response.status_code == 401 and response.json["error"] == "invalid_token"
    assert resident_touches() == 0


def test_anonymous_touches_continue_after_a_session_ends(client, kiosk):
    """Test that the kiosk may still log passers-by with its client_credentials token."""
    with freeze_time(T0):
        anonymous = client.post("/token", data={"grant_type": "client_credentials",
                                                "scope": "touch_events"},
                                auth=(kiosk.client_id, kiosk.client_secret)).json
        response = post(client, anonymous["access_token"], at(T0 - dt.timedelta(hours=1)))
    assert response.status_code == 201


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"kiosk_max_session": 30}, "kiosk_max_session"),
    ({"kiosk_max_session": 7200}, "kiosk_max_session"),
    ({"kiosk_idle_timeout": 10}, "kiosk_idle_timeout"),
    ({"kiosk_idle_timeout": 1000, "kiosk_max_session": 900}, "kiosk_idle_timeout"),
])
def test_session_settings_are_validated(overrides, problem):
    """Test that the idle timeout and maximum are bounded and the idle fits in the max."""
    with pytest.raises(config.SettingsError, match=problem):
        config.Settings.load({"environment": "test", "database_url": "sqlite://",
                              **overrides})
