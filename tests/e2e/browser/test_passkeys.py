"""Passkeys in Debian's Chromium with its virtual authenticator (Chrome DevTools
Protocol ``WebAuthn.addVirtualAuthenticator``): add one at /account/security, sign in
from the login page, inside the demo app's code flow and inside the device flow,
remove it; axe on the pages that offer passkeys (residents' and the console's).

WebAuthn refuses an IP address as relying-party id, so the IdP is named
``localhost`` here (``idp`` below), not 127.0.0.1.
"""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select

from idp.accounts.models import Passkey
from idp.extensions import db
from idp.kiosk import service as kiosks
from tests import factories
from tests.e2e.browser.conftest import AXE
from tests.e2e.browser.conftest import axe_context
from tests.e2e.browser.conftest import axe_run
from tests.e2e.browser.conftest import claims_shown
from tests.e2e.browser.conftest import sign_in
from tests.helpers.live import serve

AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                 "hasUserVerification": True, "isUserVerified": True}


@pytest.fixture
def idp(app, migrated, outbox):
    """The IdP on a loopback port under the name ``localhost`` (its issuer too)."""
    db.session.commit()
    with serve(migrated, hostname="localhost", outbox_dir=str(outbox),
               device_poll_interval=1) as base:
        yield base


NO_AUTOFILL = ("window.PublicKeyCredential && (PublicKeyCredential"
               ".isConditionalMediationAvailable = () => Promise.resolve(false));")


def authenticator(page, autofill: bool = False) -> tuple[object, str]:
    """A virtual platform authenticator on this page. Chromium's answers a conditional
    (autofill) request at once, so the tests of the button hide conditional mediation,
    as a browser without it would."""
    if not autofill:
        page.add_init_script(NO_AUTOFILL)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    return cdp, added["authenticatorId"]


def passkeys_stored() -> list[dict]:
    """The stored passkeys, read in a transaction that ends at once (the live server
    writes to the same SQLite file)."""
    db.session.rollback()
    rows = [{"name": p.name, "sign_count": p.sign_count, "last_used_at": p.last_used_at}
            for p in db.session.scalars(select(Passkey))]
    db.session.rollback()
    return rows


def add_passkey(page, idp, shot, name="ノートPC"):
    page.goto(f"{idp}/account/security")
    shot(page, "security")
    form = page.locator("form[data-passkey-form]")
    form.get_by_label(re.compile("現在のパスワード|Current password")).fill(factories.PASSWORD)
    form.get_by_label(re.compile("名前（任意）|Name \\(optional\\)")).fill(name)
    page.locator('[data-passkey="register"]').click()
    page.wait_for_selector('[data-passkey="list"] > li')
    shot(page, "passkey-added")


def signed_in_with_passkey(page, idp, shot):
    factories.resident()
    page.goto(f"{idp}/login")
    sign_in(page)
    page.wait_for_url(re.compile(r"/$|/account"))
    add_passkey(page, idp, shot)
    page.context.clear_cookies()


def test_add_then_sign_in_from_the_login_page(page, shot, idp):
    """Test adding a passkey after the password, then signing in with it (no address typed)."""
    cdp, authenticator_id = authenticator(page)
    signed_in_with_passkey(page, idp, shot)
    stored = passkeys_stored()
    assert len(stored) == 1 and stored[0]["name"] == "ノートPC"
    credentials = cdp.send("WebAuthn.getCredentials",
                           {"authenticatorId": authenticator_id})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"]

    page.goto(f"{idp}/login")
    shot(page, "login")
    page.locator('[data-passkey="signin"]').click()
    page.wait_for_url(idp + "/")
    shot(page, "signed-in")
    page.goto(f"{idp}/account/security")
    listed = page.locator('[data-passkey="list"] > li')
    assert listed.count() == 1
    assert "ノートPC" in listed.first.inner_text()
    assert passkeys_stored()[0]["last_used_at"] is not None


def test_autofill_signs_in_where_the_browser_offers_it(page, shot, idp):
    """Test conditional mediation: the login page's address field offers the passkey,
    and choosing it (the virtual authenticator does at once) signs in."""
    authenticator(page, autofill=True)
    signed_in_with_passkey(page, idp, shot)
    page.goto(f"{idp}/login")
    page.wait_for_url(idp + "/")  # the autofill request was answered: signed in
    shot(page, "signed-in-by-autofill")
    assert passkeys_stored()[0]["last_used_at"] is not None


def test_passkey_sign_in_inside_the_code_flow(page, shot, idp, demo_rp):
    """Test the demo app → login page → passkey → consent → the app, amr from the passkey."""
    authenticator(page)
    signed_in_with_passkey(page, idp, shot)
    page.goto(f"{demo_rp.base}/login")
    page.wait_for_url(re.compile(r"/login\b"))
    shot(page, "idp-login")
    page.locator('[data-passkey="signin"]').click()
    page.wait_for_url(re.compile(r"/consent/"))
    page.locator("button[value=allow]").click()
    page.wait_for_url(demo_rp.base + "/")
    shot(page, "signed-in")
    claims = claims_shown(page)
    assert claims["email"] == "hanako@example.jp"
    assert "hwk" in claims["amr"] and "mfa" in claims["amr"]


def test_passkey_sign_in_inside_the_device_flow(page, shot, idp):
    """Test a kiosk's user code → login page → passkey → the device consent page."""
    authenticator(page)
    signed_in_with_passkey(page, idp, shot)
    company = factories.company("C社")
    kiosk, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条広場")
    kiosk_id = kiosk.id
    db.session.commit()
    grant = requests.post(f"{idp}/device_authorization", auth=(kiosk_id, secret),
                          data={"scope": "openid touch_events"}, timeout=10).json()
    page.goto(grant["verification_uri_complete"])
    page.locator("form.form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/login\b"))
    shot(page, "login-from-device")
    page.locator('[data-passkey="signin"]').click()
    page.wait_for_url(re.compile(r"^[^?]*/device/confirm"))
    shot(page, "device-confirm")
    assert "北2条広場サイネージ" in page.locator("main").inner_text()


def test_remove_a_passkey(page, shot, idp):
    """Test removing a passkey: it leaves the list and no longer signs in."""
    authenticator(page)
    signed_in_with_passkey(page, idp, shot)
    page.goto(f"{idp}/login")
    sign_in(page)
    page.wait_for_url(idp + "/")
    page.goto(f"{idp}/account/security")
    item = page.locator('[data-passkey="list"] > li').first
    item.get_by_label(re.compile("現在のパスワード|Current password")).fill(factories.PASSWORD)
    item.get_by_role("button", name=re.compile("削除|Remove")).click()
    page.wait_for_load_state()
    shot(page, "removed")
    assert page.locator('[data-passkey="list"] > li').count() == 0
    assert passkeys_stored() == []
    page.context.clear_cookies()
    page.goto(f"{idp}/login")
    page.locator('[data-passkey="signin"]').click()
    page.wait_for_selector("[data-passkey-status]:not([hidden])")
    shot(page, "refused")
    assert "/login" in page.url


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed")
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_passkey_pages_are_axe_clean(browser, shot, idp, lang):
    """Test the login page and /account/security with a passkey listed, with axe-core."""
    context = axe_context(browser, locale="ja-JP" if lang == "ja" else "en-US",
                          viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        authenticator(page)
        page.goto(f"{idp}/lang/{lang}")
        signed_in_with_passkey(page, idp, shot)
        page.goto(f"{idp}/lang/{lang}")
        page.goto(f"{idp}/login")
        found = [v for v in axe_run(page, "login") if v["impact"] in ("serious", "critical")]
        page.locator('[data-passkey="signin"]').click()
        page.wait_for_url(idp + "/")
        page.goto(f"{idp}/account/security")
        shot(page, f"{lang}-security")
        found += [v for v in axe_run(page, "security") if v["impact"] in ("serious", "critical")]
        assert found == []
    finally:
        context.close()


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed")
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_passkey_offers_and_the_admin_passkey_page_are_axe_clean(browser, shot, idp, lang):
    """Test with axe-core the passkey offer on /register/done, the console's login page
    with its passkey button, and /admin/passkeys without and with a passkey listed."""
    from tests.helpers.admin import enrolled_admin  # noqa: PLC0415

    factories.resident()
    db.session.commit()
    admin = enrolled_admin()
    db.session.rollback()
    context = axe_context(browser, locale="ja-JP" if lang == "ja" else "en-US",
                          viewport={"width": 390, "height": 844})
    page = context.new_page()
    found: list[dict] = []

    def check(name, shown='[data-passkey="register"]'):
        page.wait_for_selector(shown, state="visible")  # the passkey offer is on screen
        assert page.locator("html").get_attribute("lang") == lang, (name, page.url)
        shot(page, f"{lang}-{name}")
        found.extend(v for v in axe_run(page, f"{lang} {name}")
                     if v["impact"] in ("serious", "critical"))

    try:
        authenticator(page)
        page.goto(f"{idp}/lang/{lang}")
        page.goto(f"{idp}/login")
        sign_in(page)
        page.wait_for_url(re.compile(r"/$|/account"))
        page.goto(f"{idp}/register/done")
        check("register-done-passkey-offer")

        page.context.clear_cookies()
        page.goto(f"{idp}/lang/{lang}")
        page.goto(f"{idp}/admin/login")
        check("admin-login-passkey", shown='[data-passkey="signin"]')
        page.locator("#email").fill(admin.email)
        page.locator("#password").fill(admin.password)
        page.locator("#code").fill(admin.code())
        page.locator("form.form button[type=submit]").first.click()
        page.wait_for_url(re.compile(r"/admin/$"))
        page.goto(f"{idp}/admin/passkeys")
        assert page.locator('[data-passkey="list"] > li').count() == 0
        check("admin-passkeys-empty")
        page.locator('[data-passkey="register"]').click()
        page.wait_for_selector('[data-passkey="list"] > li')
        check("admin-passkeys-listed")
        assert found == []
    finally:
        context.close()


def test_an_admin_enrols_a_passkey_and_signs_in_with_it_alone(page, shot, idp):
    """Test the console: password and code once, add a passkey, then sign in with it only."""
    from tests.helpers.admin import enrolled_admin  # noqa: PLC0415

    admin = enrolled_admin()
    db.session.rollback()
    authenticator(page)
    page.goto(f"{idp}/admin/login")
    page.locator("#email").fill(admin.email)
    page.locator("#password").fill(admin.password)
    page.locator("#code").fill(admin.code())
    page.locator("form.form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/admin/$"))
    page.goto(f"{idp}/admin/passkeys")
    page.locator('[data-passkey="register"]').click()
    page.wait_for_selector('[data-passkey="list"] > li')
    shot(page, "admin-passkey-added")
    page.context.clear_cookies()
    page.goto(f"{idp}/admin/login")
    page.locator('[data-passkey="signin"]').click()
    page.wait_for_url(re.compile(r"/admin/$"))
    shot(page, "admin-signed-in-with-passkey")
