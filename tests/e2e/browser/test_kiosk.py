"""The kiosk story on a phone (375×812): a signage kiosk shows a QR, the phone approves."""

from __future__ import annotations

import datetime as dt
import re
import time

import requests

from idp.extensions import db
from idp.kiosk import service as kiosks
from tests import factories
from tests.e2e.browser.conftest import sign_in

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def test_kiosk_story_on_a_phone(app, idp, phone, new_page, shot):
    """Test QR on the kiosk → phone signs in and approves → kiosk gets tokens → history."""
    factories.resident()
    company = factories.company("C社")
    client, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条広場")
    client_id = client.id
    db.session.commit()

    kiosk = requests.Session()
    kiosk.auth = (client_id, secret)
    grant = kiosk.post(f"{idp}/device_authorization", data={"scope": "openid touch_events"},
                       timeout=10).json()
    screen = new_page(viewport={"width": 1080, "height": 1080})
    qr = requests.get(f"{idp}/device/qr/{grant['user_code']}.svg", timeout=10)
    assert qr.ok and "<svg" in qr.text
    # The kiosk's own screen (a signage app, not the IdP): the QR and the code to type.
    screen.set_content(f"<!doctype html><html lang='ja'><title>kiosk</title><main>"
                       f"<h1>スマートフォンで読み取ってください</h1>"
                       f"<div style='width:480px'>{qr.text[qr.text.index('<svg'):]}</div>"
                       f"<p>{grant['user_code']}</p></main></html>")
    shot(screen, "kiosk-qr")
    first = kiosk.post(f"{idp}/token", timeout=10,
                       data={"grant_type": GRANT, "device_code": grant["device_code"]})
    assert first.json()["error"] == "authorization_pending"

    phone.goto(grant["verification_uri_complete"])
    shot(phone, "phone-device-code")
    assert phone.locator("#user_code").input_value() == grant["user_code"]
    phone.locator("form.form button[type=submit]").first.click()
    phone.wait_for_url(re.compile(r"/login"))
    shot(phone, "phone-login")
    sign_in(phone)
    phone.wait_for_url(re.compile(r"/device/confirm"))
    shot(phone, "phone-confirm")
    assert "北2条広場" in phone.content() and grant["user_code"] in phone.content()
    for body in phone.locator(".item-body").all():  # readable on a phone, not one glyph wide
        assert body.bounding_box()["width"] > 250
    phone.get_by_role("button", name="同意してはじめる").click()
    phone.wait_for_load_state()
    shot(phone, "phone-done")

    token = None
    deadline = time.monotonic() + 30
    interval = grant["interval"]
    while time.monotonic() < deadline:
        response = kiosk.post(f"{idp}/token", timeout=10,
                              data={"grant_type": GRANT, "device_code": grant["device_code"]})
        if response.status_code == 200:
            token = response.json()
            break
        if response.json()["error"] == "slow_down":
            interval += 5
        time.sleep(interval)
    assert token and token["access_token"]
    now = dt.datetime.now(dt.UTC).isoformat()
    stored = requests.post(f"{idp}/api/touch-events", timeout=10, json={"events": [
        {"occurred_at": now, "target": "観光マップ"}, {"occurred_at": now, "target": "イベント情報"}]},
        headers={"Authorization": f"Bearer {token['access_token']}"})
    assert stored.status_code == 201 and stored.json()["stored"] == 2

    phone.goto(f"{idp}/account/history")
    if "/login" in phone.url:
        sign_in(phone)
        phone.wait_for_url(re.compile(r"/account/history"))
    shot(phone, "phone-history")
    text = phone.locator("main").inner_text()
    assert "観光マップ" in text and "イベント情報" in text
    assert "北2条広場" in text
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the history page scrolls sideways on a phone ({width}px)"
