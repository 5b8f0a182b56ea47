"""POST /api/sensor-counts: a sensor's client_credentials token, counts stored all or
nothing, a resend replaces and says so, no identity accepted in any form."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.sensors import service as sensors
from idp.sensors.models import Sensor
from idp.sensors.models import SensorCount
from tests import factories
from tests.helpers.device import approve
from tests.helpers.device import authorize
from tests.helpers.device import poll

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def sensor(app):
    company = factories.company("C社")
    client, secret, _ = sensors.create_sensor(company, "北2条広場 人流センサー",
                                              sensors.Placement("北2条西4丁目", 43.063, 141.354))
    db.session.commit()
    return factories.RP(client.id, secret, company, redirect_uri="")


def sensor_token(client, sensor, scope="sensor_counts"):
    return client.post("/token", data={"grant_type": "client_credentials", "scope": scope},
                       auth=(sensor.client_id, sensor.client_secret))


def post(client, token: str, counts: list[dict], **extra):
    return client.post("/api/sensor-counts", json={"counts": counts, **extra},
                       headers={"Authorization": f"Bearer {token}"})


def item(minutes: int, direction: str = "in", n: int = 10) -> dict:
    return {"interval_start": (T0 - dt.timedelta(minutes=minutes)).isoformat(),
            "interval_seconds": 900, "direction": direction, "count": n}


def rows() -> list[tuple[str, int]]:
    return [(r.direction, r.count) for r in db.session.scalars(
        select(SensorCount).order_by(SensorCount.interval_start, SensorCount.direction))]


def test_a_sensor_stores_counts(client, sensor):
    """Test the happy path: 201, how many stored, the rows and the sensor's last contact."""
    with freeze_time(T0):
        token = sensor_token(client, sensor).json["access_token"]
        response = post(client, token, [item(30, "in", 12), item(30, "out", 7), item(15)])
    assert response.status_code == 201
    assert response.json == {"stored": 3, "replaced": 0}
    assert rows() == [("in", 12), ("out", 7), ("in", 10)]
    assert db.session.get(Sensor, sensor.client_id).last_seen_at is not None
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.tag == "sensor:counts:store"))
    assert event.data == {"stored": 3, "replaced": 0} and event.resident_id is None


def test_a_resend_replaces_and_says_so(client, sensor):
    """Test idempotency per sensor + interval + direction: the second value wins."""
    with freeze_time(T0):
        token = sensor_token(client, sensor).json["access_token"]
        post(client, token, [item(30, "in", 12), item(30, "out", 7)])
        again = post(client, token, [item(30, "in", 13), item(15, "in", 4)])
    assert again.status_code == 201
    assert again.json == {"stored": 1, "replaced": 1}
    assert rows() == [("in", 13), ("out", 7), ("in", 4)]


def test_two_sensors_do_not_replace_each_other(client, sensor):
    """Test that the key includes the sensor."""
    company = factories.company("D社")
    other, secret, _ = sensors.create_sensor(company, "南側", sensors.Placement("南側入口"))
    db.session.commit()
    with freeze_time(T0):
        first = sensor_token(client, sensor).json["access_token"]
        second = client.post("/token", data={"grant_type": "client_credentials",
                                             "scope": "sensor_counts"},
                             auth=(other.id, secret)).json["access_token"]
        a = post(client, first, [item(30)])
        b = post(client, second, [item(30)])
    assert a.json == b.json == {"stored": 1, "replaced": 0}
    assert db.session.scalar(select(func.count()).select_from(SensorCount)) == 2


def test_one_bad_count_rejects_the_batch(client, sensor):
    """Test all or nothing, in the touch-event API's error shape."""
    with freeze_time(T0):
        token = sensor_token(client, sensor).json["access_token"]
        response = post(client, token, [item(30), item(15, "sideways")])
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert response.json["field"] == "counts[1].direction"
    assert response.json["error_description"].startswith("counts[1].direction: ")
    assert rows() == []


@pytest.mark.parametrize("member", ["sub", "resident", "resident_id", "email", "face_id"])
def test_identity_in_a_count_is_refused(client, sensor, member):
    """Test that no member naming a person gets in."""
    with freeze_time(T0):
        token = sensor_token(client, sensor).json["access_token"]
        response = post(client, token, [{**item(30), member: "R123"}])
    assert response.status_code == 400
    assert response.json["field"] == f"counts[0].{member}"
    assert "no identity" in response.json["error_description"]
    assert rows() == []


def test_identity_beside_the_counts_is_refused(client, sensor):
    """Test that a top-level member other than counts is refused too."""
    with freeze_time(T0):
        token = sensor_token(client, sensor).json["access_token"]
        response = post(client, token, [item(30)], sub="R123")
    assert response.status_code == 400 and response.json["field"] == "sub"


def test_not_json_is_400(client, sensor):
    """Test that a body that is not JSON gets the API's error, not a 500."""
    token = sensor_token(client, sensor).json["access_token"]
    response = client.post("/api/sensor-counts", data="counts=1",
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and response.json["error"] == "invalid_request"


def test_no_token_is_401(client, sensor):
    """Test RFC 6750: no Bearer credentials, a bare challenge."""
    response = client.post("/api/sensor-counts", json={"counts": [item(30)]})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_kiosk_token_is_403(client, sensor):
    """Test that a touch_events token does not carry sensor_counts."""
    _, _, token = factories.kiosk_token(client)
    response = post(client, token, [item(30)])
    assert response.status_code == 403 and response.json["error"] == "insufficient_scope"


def test_a_non_sensor_client_with_the_scope_is_refused(client):
    """Test that a client registered for sensor_counts but not a sensor cannot post."""
    rp = factories.rp(grant_types=["client_credentials"], scopes=["sensor_counts"])
    db.session.commit()
    token = client.post("/token", data={"grant_type": "client_credentials",
                                        "scope": "sensor_counts"},
                        auth=(rp.client_id, rp.client_secret)).json["access_token"]
    response = post(client, token, [item(30)])
    assert response.status_code == 403 and response.json["error"] == "invalid_client"


def test_a_resident_cannot_be_behind_a_sensor_token(client):
    """Test that sensor_counts cannot come with a resident: the device flow of a kiosk
    client asking it is refused (the scope is not the kiosk's), so no resident token holds it."""
    factories.resident()
    company = factories.company("C社")
    kiosk, secret, _ = kiosks.create_kiosk(company, "サイネージ", "広場")
    db.session.commit()
    response = client.post("/device_authorization", data={"scope": "openid sensor_counts"},
                           auth=(kiosk.id, secret))
    assert response.status_code == 400 and response.json["error"] == "invalid_scope"
    body = authorize(client, factories.RP(kiosk.id, secret, company, redirect_uri=""))
    approve(client, body["user_code"])
    token = poll(client, factories.RP(kiosk.id, secret, company, redirect_uri=""),
                 body["device_code"]).json["access_token"]
    assert post(client, token, [item(30)]).status_code == 403


def test_a_revoked_sensor_cannot_post(client, sensor):
    """Test that revoking the sensor's client cuts it off (401 on its old token)."""
    from idp.clients import service as clients
    with freeze_time(T0):
        token = sensor_token(client, sensor).json["access_token"]
        clients.revoke_client(sensor.client_id, actor="test")
        db.session.commit()
        response = post(client, token, [item(30)])
    assert response.status_code == 401


def test_sensor_tokens_do_not_get_resident_scopes(client, sensor):
    """Test that the sensor's client_credentials grant is limited to sensor_counts."""
    response = sensor_token(client, sensor, scope="sensor_counts touch_events")
    assert response.status_code == 400 and response.json["error"] == "invalid_scope"


def test_counts_past_the_sensors_retention_are_purged(client, sensor):
    """Test that the worker's purge keeps what /transparency promises: counts older than
    the sensor's retention period go, younger ones stay, and the purge is audited."""
    with freeze_time(T0):
        token = sensor_token(client, sensor).json["access_token"]
        assert post(client, token, [item(30, "in", 12), item(15, "out", 3)]).status_code == 201
    retention = db.session.get(Sensor, sensor.client_id).retention_days
    just_inside = T0 + dt.timedelta(days=retention) - dt.timedelta(minutes=20)
    assert sensors.purge_expired(just_inside) == 1
    assert rows() == [("out", 3)]
    assert sensors.purge_expired(T0 + dt.timedelta(days=retention)) == 1
    assert rows() == []
    db.session.commit()  # audit events are written with the unit of work
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.tag == "sensor:counts:expire")) == 2
