"""The consent screens on a phone (375×812) and a desktop (1280×800), in Japanese and English.

The decision (「同意してはじめる」/「同意しない」) must be reachable: its buttons inside the
first 1.5 screens (they stick to the bottom, so in fact on the first one), no horizontal
scroll, every note of the draft terms present but folded, and axe-core without serious or
critical violations. The code flow's consent page and the kiosk's (device flow) both.
One screenshot per page, viewport and language is kept in artifacts/screenshots/consent/.
"""

from __future__ import annotations

import re

import pytest
import requests

from idp.extensions import db
from idp.kiosk import service as kiosks
from tests import factories
from tests.e2e.browser.conftest import AXE
from tests.e2e.browser.conftest import SCREENSHOTS
from tests.e2e.browser.conftest import axe_check
from tests.e2e.browser.conftest import axe_context
from tests.e2e.browser.conftest import sign_in

pytestmark = pytest.mark.skipif(not AXE.exists(), reason=(
    "axe-core is not installed: npm ci --prefix tests/e2e/browser"))

VIEWPORTS = {"phone": {"width": 375, "height": 812}, "desktop": {"width": 1280, "height": 800}}
FOLDER = SCREENSHOTS / "consent"
NOTES = {"ja": "以下の点にご注意ください", "en": "please note the following"}


def _context(browser, lang: str, viewport: str):
    phone = viewport == "phone"
    # bypass_csp only so axe-core can run; the pages' own CSS is from static files.
    return axe_context(browser, locale="ja-JP" if lang == "ja" else "en-US",
                       viewport=VIEWPORTS[viewport], is_mobile=phone,
                       has_touch=phone, device_scale_factor=1)


def _check_reachable(page, lang: str, where: str) -> None:
    """The decision buttons are within 1.5 screens, the page has no horizontal scroll,
    the notes are all there (folded, each with a summary), and axe is clean."""
    height = page.viewport_size["height"]
    for value in ("allow", "deny"):
        box = page.locator(f"button[name=decision][value={value}]").bounding_box()
        assert box is not None, (where, value)
        assert box["y"] >= 0 and box["y"] + box["height"] <= height * 1.5, (where, value, box)
    # Sticky: on the very first screen, in fact.
    assert page.locator("button[value=allow]").bounding_box()["y"] + 48 <= height, where
    wide = page.evaluate("() => [document.documentElement.scrollWidth,"
                         " document.documentElement.clientWidth]")
    assert wide[0] <= wide[1], (where, wide)
    assert NOTES[lang] in page.locator(".notes-lead").inner_text(), where
    summaries = page.locator(".notes details.note > summary")
    assert summaries.count() >= 4, where
    assert all(t.strip() for t in summaries.all_inner_texts()), where
    violations = axe_check(page, where)
    assert violations == [], violations


def _save(page, name: str) -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(FOLDER / f"{name}.png"))  # the first screen only: small files


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_code_flow_consent_fits(lang, viewport, browser, demo_rp, idp):
    """Test the code flow's consent page: decision reachable, no side scroll, axe clean."""
    factories.resident()
    db.session.commit()
    context = _context(browser, lang, viewport)
    page = context.new_page()
    try:
        page.goto(f"{idp}/lang/{lang}")
        page.goto(f"{demo_rp.base}/login?ui_locales={lang}")
        page.wait_for_url(re.compile(r"/login\b"))
        sign_in(page)
        page.wait_for_url(re.compile(r"/consent/"))
        assert page.locator("html").get_attribute("lang") == lang
        _check_reachable(page, lang, f"consent {lang} {viewport}")
        # Continued access is never ticked by default; the other optional items are.
        assert not page.locator("input[value=offline_access]").is_checked()
        assert page.locator("input[value=email]").is_checked()
        _save(page, f"consent-{viewport}-{lang}")
        # A note opens to its full text of the draft terms.
        page.locator(".notes details.note > summary").nth(3).click()
        assert page.locator(".notes details.note").nth(3).locator("p").is_visible()
    finally:
        context.close()


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_kiosk_consent_fits(lang, viewport, browser, idp):
    """Test the kiosk's consent page (device flow) the same way, with its five notes."""
    factories.resident()
    company = factories.company("C社")
    kiosk, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条広場")
    kiosk_id = kiosk.id
    db.session.commit()
    grant = requests.post(f"{idp}/device_authorization", auth=(kiosk_id, secret),
                          data={"scope": "openid touch_events"}, timeout=10).json()
    context = _context(browser, lang, viewport)
    page = context.new_page()
    try:
        page.goto(f"{idp}/lang/{lang}")
        page.goto(grant["verification_uri_complete"])
        page.locator("form.form button[type=submit]").first.click()
        page.wait_for_url(re.compile(r"/login"))
        sign_in(page)
        page.wait_for_url(re.compile(r"/device/confirm"))
        _check_reachable(page, lang, f"device consent {lang} {viewport}")
        assert page.locator(".notes details.note").count() == 5
        assert "C社" in page.locator(".kiosk-info").inner_text()
        _save(page, f"kiosk-consent-{viewport}-{lang}")
    finally:
        context.close()


def test_back_button_after_consent_says_signed_in(phone, demo_rp, idp):
    """Test that going back to the consent page after agreeing says the sign-in is done
    and links back to the service's home page (client_uri), not "expired"."""
    factories.resident()
    db.session.commit()
    phone.goto(f"{demo_rp.base}/login")
    sign_in(phone)
    phone.wait_for_url(re.compile(r"/consent/"))
    phone.locator("button[value=allow]").click()
    phone.wait_for_url(demo_rp.base + "/")
    phone.go_back()
    phone.wait_for_url(re.compile(r"/consent/"))
    assert phone.locator("h1").inner_text() == "ログインは完了しています"
    assert "有効期限" not in phone.locator("main").inner_text()
    back = phone.get_by_role("link", name="XXXサービスに戻る")
    assert back.get_attribute("href") == demo_rp.base + "/"
    back.click()
    phone.wait_for_url(demo_rp.base + "/")
