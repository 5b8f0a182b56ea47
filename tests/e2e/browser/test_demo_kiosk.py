"""The demo kiosk page (demo/kiosk.py): a live QR, the phone approves, touches are logged."""

from __future__ import annotations

import re

from sqlalchemy import select

from idp.access.models import Token
from idp.extensions import db
from idp.kiosk import service as kiosks
from tests import factories
from tests.e2e.browser.conftest import sign_in
from tests.helpers.live import serve_wsgi


def test_demo_kiosk_page(app, idp, phone, new_page, shot):
    """Test the demo kiosk: QR and code, phone approves, touches appear on both sides."""
    from demo.kiosk import create_app as create_kiosk_page

    factories.resident()
    company = factories.company("C社")
    client, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条広場")
    client_id = client.id
    db.session.commit()

    with serve_wsgi(lambda base: create_kiosk_page(idp, client_id, secret)) as kiosk_base:
        screen = new_page(viewport={"width": 1080, "height": 1080})
        screen.goto(kiosk_base + "/")
        shot(screen, "kiosk-qr")
        assert screen.locator(".qr svg").count() == 1
        code = screen.locator("#user-code").inner_text().strip()
        # A countdown to the code's expiry, in the page's language, ticking once a second.
        countdown = screen.locator("#countdown")
        first = countdown.inner_text()
        assert re.fullmatch(r"コードの有効期限まで、あと\d+分\d\d秒です。", first), first
        screen.wait_for_function(
            "t => document.getElementById('countdown').textContent !== t", arg=first)
        # The page polls with its script: no reload from here on (the marker survives).
        screen.evaluate("window.kioskMarker = 'same page'")
        complete = screen.locator(".qr").get_attribute("aria-label").removeprefix("QR: ")

        phone.goto(complete)
        phone.locator("form.form button[type=submit]").first.click()
        phone.wait_for_url(re.compile(r"/login"))
        # The login page says which service and which place the sign-in is for.
        lead = phone.locator("p.lead").inner_text()
        assert "北2条広場サイネージ" in lead and "C社" in lead and "北2条広場" in lead, lead
        sign_in(phone)
        phone.wait_for_url(re.compile(r"/device/confirm"))
        assert code in phone.content()
        shot(phone, "phone-confirm")
        phone.get_by_role("button", name="同意してはじめる").click()
        phone.wait_for_load_state()
        shot(phone, "phone-done")

        # The kiosk's script polls /status.json and swaps the page's content in place.
        screen.get_by_role("button", name="観光マップ").wait_for(timeout=30_000)
        assert screen.evaluate("window.kioskMarker") == "same page"
        shot(screen, "kiosk-signed-in")
        screen.get_by_role("button", name="観光マップ").click()
        screen.get_by_role("button", name="防災情報").click()
        shot(screen, "kiosk-touches-logged")
        rows = screen.locator("table").inner_text()
        assert "観光マップ" in rows and "防災情報" in rows and "HTTP 201" in rows

        # "Finish" ends the resident's session: the token is revoked at /revoke and the
        # screen shows a fresh QR code for the next person.
        screen.get_by_role("button", name=re.compile("終了して次の方へ")).click()
        screen.locator(".qr svg").wait_for(timeout=30_000)
        db.session.rollback()
        device_tokens = db.session.scalars(select(Token).where(
            Token.client_id == client_id, Token.resident_id.is_not(None))).all()
        assert device_tokens and all(t.revoked_at is not None for t in device_tokens)
        # Let go of the database (SQLite: this test's transaction holds the write lock).
        db.session.rollback()

    phone.goto(f"{idp}/account/history")
    shot(phone, "phone-history")
    history = phone.locator("main").inner_text()
    assert "観光マップ" in history and "防災情報" in history


def test_demo_kiosk_english_and_without_javascript(app, idp, browser, shot):
    """Test the kiosk page in English (one language per sentence) and, without JavaScript,
    the old self-reloading page with the countdown rendered by the server."""
    from demo.kiosk import create_app as create_kiosk_page

    company = factories.company("C社")
    client, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条広場")
    client_id = client.id
    db.session.commit()
    with serve_wsgi(lambda base: create_kiosk_page(idp, client_id, secret)) as kiosk_base:
        context = browser.new_context(viewport={"width": 1080, "height": 1080})
        screen = context.new_page()
        screen.goto(kiosk_base + "/?lang=en")
        shot(screen, "kiosk-en")
        assert screen.locator("html").get_attribute("lang") == "en"
        sentences = screen.locator("main .box p").all_inner_texts()
        code = screen.locator("#user-code").inner_text()
        japanese = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
        assert sentences and not [t for t in sentences if japanese.search(t)], sentences
        assert re.fullmatch(r"The code expires in \d+ min \d\d s\.",
                            screen.locator("#countdown").inner_text())
        context.close()

        context = browser.new_context(java_script_enabled=False)
        screen = context.new_page()
        screen.goto(kiosk_base + "/")
        refresh = screen.locator("noscript").inner_html()
        assert 'http-equiv="refresh"' in refresh
        assert screen.locator("#user-code").inner_text() == code  # the same pending code
        assert re.fullmatch(r"コードの有効期限まで、あと\d+分\d\d秒です。",
                            screen.locator("#countdown").inner_text())
        context.close()
