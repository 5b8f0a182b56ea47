"""Property-based fuzzing of every form and JSON endpoint with hostile values.

NUL, lone surrogates, overlong values and deep nesting, mixed with ordinary
values, sent to the protocol endpoints (token, revoke, introspect, device
authorization), the forms people post (login, registration, admin sign-in, the
device code form) and the touch-event and sensor-count APIs: never a 5xx. NUL and surrogates
reached PostgreSQL as 500s before, so run this under IDP_TEST_DATABASE_URL too
(CI does). Each test stays well under 30 s.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlalchemy import select

from idp.extensions import db
from idp.sensors import service as sensors
from idp.sensors.models import SensorCount
from tests import factories
from tests.factories import csrf
from tests.helpers.admin import enrolled_admin

EXAMPLES = 120
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# Lone surrogates cannot be encoded as UTF-8; "surrogatepass" sends their bytes as
# they are (%ED%A0%80), which is what a hostile client can put on the wire.
surrogates = st.characters(categories=["Cs"])
hostile = st.one_of(
    st.text(max_size=20),
    st.text(st.one_of(st.characters(), surrogates), max_size=12),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "%00", "\u202e", "", " ",
                     "null", "-1", "😀", "\\u0000"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "あ", "\x00", "%"]),
              st.integers(8000, 9000)),
)
maybe = st.one_of(st.none(), hostile)


@pytest.fixture
def settings_overrides():
    # The throttles would turn most examples into 429s before they reach the views.
    lots = "100000 per minute"
    return {"login_address_limit": lots, "admin_login_limit": lots,
            "user_code_attempts": lots, "account_mail_limit": lots, "token_rate_limit": lots}


def fuzz(**strategies):
    return lambda fn: settings(max_examples=EXAMPLES, deadline=None, database=None,
                               derandomize=True, suppress_health_check=list(HealthCheck))(
        given(**strategies)(fn))


def form(data: dict) -> str:
    return urlencode({k: v for k, v in data.items() if v is not None},
                     encoding="utf-8", errors="surrogatepass")


def post_form(client, path: str, data: dict, **kwargs):
    response = client.post(path, data=form(data),
                           content_type="application/x-www-form-urlencoded", **kwargs)
    assert response.status_code < 500, (path, data, response.text[:300])
    return response


@pytest.fixture
def kiosk(app, client):
    return factories.kiosk_token(client)


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect", "/device_authorization"])
def test_protocol_endpoints_never_fail_on_hostile_forms(client, kiosk, path):
    """Test that hostile form values at the OAuth endpoints get OAuth errors, never a 5xx."""
    kiosk_id, secret, token = kiosk
    factories.resident()
    rp = factories.rp()

    @fuzz(grant_type=st.one_of(st.sampled_from(["authorization_code", "refresh_token",
                                                 "client_credentials", DEVICE_GRANT]),
                               hostile),
          values=st.dictionaries(st.sampled_from(
              ["code", "refresh_token", "device_code", "scope", "redirect_uri", "code_verifier",
               "token", "token_type_hint", "client_id", "client_secret", "client_assertion",
               "client_assertion_type", "resource"]), hostile, max_size=5),
          name=hostile, auth=st.sampled_from(["kiosk", "rp", "none", "assertion"]))
    def run(grant_type, values, name, auth):
        data = {"grant_type": grant_type, **values, name: "x"}
        kwargs = {}
        if auth == "kiosk":
            kwargs["auth"] = (kiosk_id, secret)
        elif auth == "rp":
            kwargs["auth"] = (rp.client_id, rp.client_secret)
        elif auth == "assertion":
            data["client_assertion_type"] = ASSERTION_TYPE
            data.setdefault("client_assertion", token)
        db.session.rollback()
        response = post_form(client, path, data, **kwargs)
        assert response.mimetype == "application/json"

    run()


def test_sensor_counts_never_fail_on_hostile_json(app, client):
    """Test that hostile JSON (deep nesting, NUL, lone surrogates, overlong strings, wrong
    types in every member of a count) at the sensor-count API gets its JSON 4xx, never a
    5xx, and stores nothing it refused."""
    company = factories.company("C社")
    sensor, secret, _ = sensors.create_sensor(company, "人流センサー",
                                              sensors.Placement("北2条西4丁目"))
    db.session.commit()
    token = client.post("/token", data={"grant_type": "client_credentials",
                                        "scope": "sensor_counts"},
                        auth=(sensor.id, secret)).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(),
                                         st.floats(allow_nan=False), hostile),
                               lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(hostile, inner,
                                                                       max_size=3)),
                               max_leaves=8)
    count = st.fixed_dictionaries(
        {"interval_start": st.one_of(st.just("2026-11-20T10:15:00Z"), hostile, json_values),
         "interval_seconds": st.one_of(st.just(300), st.integers(), json_values),
         "direction": st.one_of(st.sampled_from(["in", "out", "north"]), hostile),
         "count": st.one_of(st.just(4), st.integers(), json_values)},
        optional={"resident": json_values, "sub": hostile})

    @fuzz(body=st.one_of(
        st.builds(lambda counts: json.dumps({"counts": counts}), st.lists(count, max_size=3)),
        st.builds(json.dumps, json_values),
        st.builds(lambda o, n: o * n, st.sampled_from(["[", '{"a":', "[{\"counts\":"]),
                  st.integers(30, 60000)),
        st.builds(lambda n: "[" * n + "]" * n, st.integers(30, 3000)),
    ))
    def run(body):
        db.session.rollback()
        stored = db.session.scalar(select(func.count()).select_from(SensorCount))
        response = client.post("/api/sensor-counts", data=body,
                               content_type="application/json", headers=headers)
        assert response.status_code < 500, (body[:200], response.text[:300])
        assert response.mimetype == "application/json"
        if response.status_code >= 400:
            assert response.json["error"] in ("invalid_request", "invalid_token")
            db.session.rollback()
            assert db.session.scalar(select(func.count()).select_from(SensorCount)) == stored

    run()


def test_touch_events_never_fail_on_hostile_json(client, kiosk):
    """Test that hostile JSON (deep nesting, NUL, lone surrogates, overlong strings) at the
    touch-event API gets its JSON 4xx, never a 5xx."""
    _, _, token = kiosk
    headers = {"Authorization": f"Bearer {token}"}
    json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), hostile),
                               lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(hostile, inner,
                                                                       max_size=3)),
                               max_leaves=8)
    event = st.fixed_dictionaries({"occurred_at": st.one_of(st.just("2026-11-20T10:15:00Z"),
                                                            hostile),
                                   "target": st.one_of(st.just("map"), json_values)},
                                  optional={"event_id": json_values})

    @fuzz(body=st.one_of(
        st.builds(lambda events: json.dumps({"events": events}), st.lists(event, max_size=3)),
        st.builds(json.dumps, json_values),
        st.builds(lambda o, n: o * n, st.sampled_from(["[", '{"a":', "[{\"events\":"]),
                  st.integers(30, 60000)),
        st.builds(lambda n: "[" * n + "]" * n, st.integers(30, 3000)),
    ))
    def run(body):
        db.session.rollback()
        response = client.post("/api/touch-events", data=body,
                               content_type="application/json", headers=headers)
        assert response.status_code < 500, (body[:200], response.text[:300])
        assert response.mimetype == "application/json"

    run()


@pytest.mark.parametrize(("page", "path", "fields"), [
    ("/login", "/login", ["email", "password", "interaction", "next"]),
    ("/register", "/register", ["email", "terms_version", "next"]),
    ("/admin/login", "/admin/login", ["email", "password", "code"]),
    ("/device", "/device", ["user_code"]),
    ("/device", "/device/confirm", ["user_code", "decision", "scope"]),
], ids=["login", "register", "admin-sign-in", "device", "device-confirm"])
def test_forms_never_fail_on_hostile_values(client, app, page, path, fields):
    """Test that hostile values in the forms people post get a page, never a 5xx."""
    factories.resident()
    enrolled_admin()
    token = csrf(client.get(page).text)

    @fuzz(values=st.fixed_dictionaries({}, optional={f: hostile for f in fields}),
          extra=st.dictionaries(hostile, hostile, max_size=2))
    def run(values, extra):
        db.session.rollback()
        response = post_form(client, path, {**extra, **values, "csrf_token": token})
        assert response.mimetype == "text/html"

    run()
