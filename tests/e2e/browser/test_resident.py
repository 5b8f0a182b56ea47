"""A resident registers, verifies the email from the development outbox, signs in to the
demo app, and later withdraws that consent on /account/consents."""

from __future__ import annotations

import re

from tests import factories
from tests.e2e.browser.conftest import claims_shown
from tests.e2e.browser.conftest import sign_in

EMAIL = "taro@example.jp"
PASSWORD = "sapporo-odori-2026"


def test_register_verify_email_then_sign_in_to_the_demo_app(page, new_page, shot, demo_rp, idp):
    """Test registration → link from /dev/outbox → profile and terms → consent → demo app."""
    page.goto(demo_rp.base + "/")
    shot(page, "demo-app")
    page.get_by_role("link", name=re.compile("コンソーシアムIDでログイン")).click()
    page.wait_for_url(re.compile(r"/login\b"))
    shot(page, "idp-login")
    page.get_by_role("link", name="コンソーシアムIDの新規登録").click()
    page.wait_for_url(re.compile(r"/register"))
    shot(page, "register")
    page.locator("#email").fill(EMAIL)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_load_state()
    shot(page, "mail-sent")

    mail = new_page()
    mail.goto(f"{idp}/dev/outbox/")
    shot(mail, "outbox")
    mail.locator("ul.cards a").first.click()
    shot(mail, "outbox-message")
    assert EMAIL in mail.locator("main").inner_text()
    link = mail.locator("main ul a").first.get_attribute("href")
    assert "/register/complete" in link or "token" in link, link

    page.goto(link)
    shot(page, "register-complete")
    page.locator("#password").fill(PASSWORD)
    page.locator("#password_confirm").fill(PASSWORD)
    page.locator("#family_name").fill("大通")
    page.locator("#given_name").fill("太郎")
    page.locator("#birth_year").fill("1985")
    page.locator("#postal_code").fill("060-0001")
    for name in ("agree_provision", "agree_collection", "agree_terms"):
        page.locator(f"#{name}").check()
    shot(page, "register-complete-filled")
    page.locator("form.form button[type=submit]").last.click()
    page.wait_for_load_state()
    shot(page, "registered")

    # Back to the service: sign in (if the registration did not sign in already) and consent.
    page.goto(f"{demo_rp.base}/login")
    page.wait_for_url(re.compile(r"/(login|consent/)"))
    if "/login" in page.url:
        shot(page, "idp-login-again")
        sign_in(page, EMAIL, PASSWORD)
        page.wait_for_url(re.compile(r"/consent/"))
    shot(page, "consent")
    page.get_by_role("button", name="同意してはじめる").click()
    page.wait_for_url(demo_rp.base + "/")
    shot(page, "signed-in")
    claims = claims_shown(page)
    assert claims["email"] == EMAIL
    assert claims["name"] == "大通 太郎"
    assert claims["email_verified"] == "true"


def test_withdrawn_consent_is_asked_again(page, shot, demo_rp, idp):
    """Test withdrawing the consent on /account/consents: the next sign-in asks again."""
    factories.resident()
    page.goto(f"{demo_rp.base}/login")
    sign_in(page)
    page.wait_for_url(re.compile(r"/consent/"))
    page.get_by_role("button", name="同意してはじめる").click()
    page.wait_for_url(demo_rp.base + "/")
    shot(page, "signed-in")

    # Signed in at the IdP and consented: a new sign-in goes straight back.
    page.goto(f"{demo_rp.base}/login")
    page.wait_for_url(demo_rp.base + "/")
    shot(page, "signed-in-without-asking")

    page.goto(f"{idp}/account/consents")
    shot(page, "account-consents")
    page.get_by_role("button", name=re.compile("XXXサービスへの同意を取り消")).click()
    page.wait_for_load_state()
    shot(page, "withdrawal-asks-first")  # nothing is withdrawn until it is confirmed
    page.get_by_role("button", name=re.compile("XXXサービスへの同意を取り消")).click()
    page.wait_for_load_state()
    shot(page, "consent-withdrawn")
    assert "同意を取り消しました" in page.locator("main").inner_text()
    assert "XXXサービス" in page.locator("main").inner_text()

    page.goto(f"{demo_rp.base}/login")
    page.wait_for_url(re.compile(r"/consent/"))
    shot(page, "consent-asked-again")
    assert page.get_by_role("button", name="同意してはじめる").is_visible()
