"""A resident signs in to the demo app (A社 XXXサービス) in a real browser."""

from __future__ import annotations

import re

from idp.extensions import db
from tests import factories
from tests.e2e.browser.conftest import claims_shown
from tests.e2e.browser.conftest import sign_in

# What the demo app shows for a resident who agreed to every item (personal claims only).
EVERYTHING = {"sub", "name", "family_name", "given_name", "family_name#ja-Kana-JP",
              "given_name#ja-Kana-JP", "birthdate", "gender", "email", "email_verified",
              "address.postal_code", "address.locality"}


def personal(claims: dict) -> set[str]:
    from demo.relying_party import PERSONAL

    return {name for name in claims if name in PERSONAL}


def start(page, shot, demo_rp, query=""):
    factories.resident()
    page.goto(f"{demo_rp.base}/{query}")
    shot(page, "demo-app")
    page.get_by_role("link", name=re.compile("コンソーシアムIDでログイン")).click()
    page.wait_for_url(re.compile(r"/login\b"))
    shot(page, "idp-login")
    sign_in(page)
    page.wait_for_url(re.compile(r"/consent/"))
    shot(page, "consent")


def test_sign_in_consent_in_japanese_shows_exactly_the_consented_claims(page, shot, demo_rp):
    """Test demo app → login → Japanese consent → the app shows the consented claims only."""
    start(page, shot, demo_rp)
    assert page.locator("html").get_attribute("lang") == "ja"
    agree = page.get_by_role("button", name="同意してはじめる")
    assert agree.is_visible()
    assert "A社" in page.locator("h1").inner_text()
    agree.click()
    page.wait_for_url(demo_rp.base + "/")
    shot(page, "signed-in")
    claims = claims_shown(page)
    assert claims["name"] == "札幌 花子"
    assert claims["email"] == "hanako@example.jp"
    assert claims["birthdate"] == "1990"
    assert claims["gender"] == "female"
    assert claims["address.postal_code"] == "060-0042"
    assert claims["sub"] and claims["aud"] == demo_rp.client.client_id
    assert personal(claims) == EVERYTHING
    scope = page.locator("code").nth(1).inner_text().split()
    # Continued access (offline_access) is never ticked by default: agreeing without
    # ticking it grants everything else.
    assert set(scope) == set(factories.ALL_SCOPES) - {"offline_access"}


def test_unticked_optional_item_is_absent_at_the_app(page, shot, demo_rp):
    """Test unticking one optional item (gender): the app never receives that claim."""
    start(page, shot, demo_rp)
    gender = page.get_by_role("checkbox", name=re.compile("性別"))
    assert gender.is_checked()
    gender.uncheck()
    shot(page, "consent-gender-unticked")
    page.get_by_role("button", name="同意してはじめる").click()
    page.wait_for_url(demo_rp.base + "/")
    shot(page, "signed-in")
    claims = claims_shown(page)
    assert "gender" not in claims
    assert personal(claims) == EVERYTHING - {"gender"}
    assert claims["email"] == "hanako@example.jp" and claims["name"] == "札幌 花子"
    assert "gender" not in page.locator("code").nth(1).inner_text().split()


def test_english_by_ui_locales(page, shot, demo_rp):
    """Test ui_locales=en: the login and consent pages are in English; the flow completes."""
    start(page, shot, demo_rp, "?ui_locales=en")
    assert page.locator("html").get_attribute("lang") == "en"
    agree = page.get_by_role("button", name="Agree and start")
    assert agree.is_visible()
    assert page.get_by_role("button", name="Decline").is_visible()
    agree.click()
    page.wait_for_url(demo_rp.base + "/")
    shot(page, "signed-in")
    assert claims_shown(page)["email"] == "hanako@example.jp"


def test_consent_by_keyboard_alone(page, shot, demo_rp):
    """Test the consent screen can be completed with the keyboard only (Tab, Space, Enter)."""
    start(page, shot, demo_rp)
    page.locator("body").focus()
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement && document.activeElement.id")
        if focused and page.evaluate("document.activeElement.type") == "checkbox":
            label = page.evaluate("document.activeElement.labels[0].innerText")
            if "性別" in label:
                page.keyboard.press("Space")
                break
    assert not page.get_by_role("checkbox", name=re.compile("性別")).is_checked()
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.value") == "allow":
            break
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    shadow = page.evaluate("getComputedStyle(document.activeElement).boxShadow")
    assert outline != "none" or shadow != "none", "no visible focus on the agree button"
    shot(page, "agree-focused")
    page.keyboard.press("Enter")
    page.wait_for_url(demo_rp.base + "/")
    shot(page, "signed-in")
    assert "gender" not in claims_shown(page)


def test_two_companies_see_different_subjects(page, shot, app, idp, demo_rp):
    """Test the demo's point: A社 and B社 get different pairwise subjects for one resident."""
    from demo.relying_party import create_app as create_rp
    from tests.helpers.live import serve_wsgi

    factories.resident()
    company_b = factories.company("B社")

    def make(base):
        client = factories.rp(company_b, redirect_uris=[f"{base}/callback"])
        db.session.rollback()
        return create_rp(idp, client.client_id, client.client_secret, f"{base}/callback",
                         title="B社 YYYサービス")

    subjects = {}
    with serve_wsgi(make) as b_base:
        for name, base in (("a", demo_rp.base), ("b", b_base)):
            page.goto(f"{base}/login")
            if "/login" in page.url:
                sign_in(page)
            page.wait_for_url(re.compile(r"/consent/"))
            shot(page, f"consent-{name}")
            page.get_by_role("button", name="同意してはじめる").click()
            page.wait_for_url(base + "/")
            shot(page, f"signed-in-{name}")
            subjects[name] = claims_shown(page)["sub"]
        page.goto(demo_rp.base + "/")  # A社's session survives signing in to B社 (own cookie)
        assert claims_shown(page)["sub"] == subjects["a"]
    assert subjects["a"] and subjects["b"] and subjects["a"] != subjects["b"]


def test_works_without_javascript_and_loads_nothing_from_elsewhere(new_page, shot, demo_rp):
    """Test sign-in and consent with JavaScript off; every request stays on this machine."""
    from urllib.parse import urlsplit

    factories.resident()
    page = new_page(java_script_enabled=False)
    hosts = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).hostname))
    page.goto(f"{demo_rp.base}/login")
    page.wait_for_url(re.compile(r"/login\b"))
    shot(page, "idp-login-no-js")
    sign_in(page)
    page.wait_for_url(re.compile(r"/consent/"))
    shot(page, "consent-no-js")
    page.get_by_role("checkbox", name=re.compile("性別")).uncheck()
    page.get_by_role("button", name="同意してはじめる").click()
    page.wait_for_url(demo_rp.base + "/")
    shot(page, "signed-in-no-js")
    claims = claims_shown(page)
    assert claims["email"] == "hanako@example.jp" and "gender" not in claims
    assert hosts == {"127.0.0.1"}, hosts  # no CDN, no web fonts, no analytics
