"""The kiosk story over real HTTP: a kiosk polls while a phone approves."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import requests

from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.sensors import service as sensors
from tests import factories
from tests.factories import csrf
from tests.helpers.live import serve

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def live(app, migrated):
    factories.resident()
    company = factories.company("C社")
    client, secret, _ = kiosks.create_kiosk(company, "サイネージ", "北2条広場")
    client_id = client.id
    db.session.commit()
    with serve(migrated, device_poll_interval=1) as base:
        yield base, client_id, secret



def phone_approves(base, verification_uri_complete):
    """A second HTTP client: open the complete URI, sign in, approve."""
    phone = requests.Session()
    page = phone.get(verification_uri_complete, timeout=10)
    code = re.search(r'name="user_code"[^>]*value="([^"]+)"', page.text).group(1)
    response = phone.post(f"{base}/device", data={"user_code": code,
                                                  "csrf_token": csrf(page.text)}, timeout=10)
    assert "/login" in response.url
    response = phone.post(f"{base}/login", timeout=10, data={
        "email": "hanako@example.jp", "password": factories.PASSWORD,
        "next": "/device/confirm", "csrf_token": csrf(response.text)})
    assert "北2条広場" in response.text and code in response.text
    done = phone.post(f"{base}/device/confirm", timeout=10,
                      data={"decision": "allow", "csrf_token": csrf(response.text)})
    assert done.status_code == 200


def test_kiosk_gets_tokens_after_the_phone_approves(live):
    """Test the whole device flow over HTTP with real polling."""
    base, client_id, secret = live
    kiosk = requests.Session()
    kiosk.auth = (client_id, secret)
    grant = kiosk.post(f"{base}/device_authorization", data={"scope": "openid touch_events"},
                       timeout=10).json()
    assert kiosk.get(f"{base}/device/qr/{grant['user_code']}.svg", timeout=10).ok
    phone = threading.Thread(target=phone_approves,
                             args=(base, grant["verification_uri_complete"]))
    results = []
    interval = grant["interval"]
    phone_started = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = kiosk.post(f"{base}/token", timeout=10, data={
            "grant_type": GRANT, "device_code": grant["device_code"]})
        results.append(response.json().get("error", "tokens"))
        if response.status_code == 200:
            token = response.json()
            break
        if not phone_started:
            phone.start()
            phone_started = True
        if response.json()["error"] == "slow_down":
            interval += 5
        time.sleep(interval)
    phone.join(timeout=10)
    assert results[0] == "authorization_pending" and results[-1] == "tokens", results
    stored = requests.post(f"{base}/api/touch-events", timeout=10, json={"events": [
        {"occurred_at": dt.datetime.now(dt.UTC).isoformat(), "target": "map"}]},
        headers={"Authorization": f"Bearer {token['access_token']}"})
    assert stored.status_code == 201 and stored.json()["stored"] == 1



def test_kiosk_simulator_against_a_served_idp(live, migrated):
    """Test `idp kiosks simulate` as a process: prints the URI, polls, posts events."""
    base, client_id, secret = live
    env = {**os.environ, "IDP_DATABASE_URL": migrated, "IDP_ENVIRONMENT": "test",
           "IDP_ISSUER": base, "IDP_KIOSK_CLIENT_SECRET": secret}
    kiosk = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "idp.cli", "kiosks", "simulate", "--client-id", client_id,
         "--issuer", base, "--events", "2", "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        complete = None
        for line in kiosk.stdout:
            lines.append(line)
            match = re.search(r"(http://\S+/device\?user_code=[A-Z-]+)", line)
            if match:
                complete = match.group(1)
                break
        assert complete, "".join(lines)
        phone_approves(base, complete)
        rest = kiosk.stdout.read()
        assert kiosk.wait(timeout=30) == 0, rest
    finally:
        if kiosk.poll() is None:
            kiosk.kill()
    assert '"stored":2' in rest.replace(" ", ""), rest
    # The resident is done: the simulator revoked the token at /revoke.
    assert "session ended: token revoked (HTTP 200)" in rest, rest


def test_sensor_simulator_against_a_served_idp(app, migrated):
    """Test `idp sensors simulate` as a process: a client_credentials token, counts posted,
    a resend replaced."""
    company = factories.company("C社")
    sensor, secret, _ = sensors.create_sensor(company, "人流センサー",
                                              sensors.Placement("北2条広場", 43.063, 141.354))
    sensor_id = sensor.id
    db.session.commit()
    with serve(migrated) as base:
        env = {**os.environ, "IDP_DATABASE_URL": migrated, "IDP_ENVIRONMENT": "test",
               "IDP_ISSUER": base, "IDP_SENSOR_CLIENT_SECRET": secret}
        result = subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "idp.cli", "sensors", "simulate", "--client-id", sensor_id,
             "--issuer", base, "--intervals", "3", "--seed", "7", "--resend"],
            capture_output=True, text=True, env=env, timeout=60)
        public = requests.get(f"{base}/transparency.json", timeout=10).json()
    assert result.returncode == 0, result.stdout + result.stderr
    first, second = [line.replace(" ", "") for line in result.stdout.strip().splitlines()]
    assert '"stored":6' in first and '"replaced":0' in first
    assert '"stored":0' in second and '"replaced":6' in second
    assert [d["id"] for d in public["devices"]] == [f"sensor-{sensor_id}"]
