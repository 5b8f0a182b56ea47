"""An administrator signs in with TOTP and revokes the demo app: its next API call fails."""

from __future__ import annotations

import re

from idp.extensions import db
from tests import factories
from tests.e2e.browser.conftest import sign_in
from tests.helpers.admin import enrolled_admin


def test_admin_revokes_the_demo_client_and_its_userinfo_call_fails(page, new_page, shot,
                                                                   demo_rp, idp):
    """Test /admin/login (password + TOTP) → revoke the client → the demo's userinfo fails."""
    factories.resident()
    admin = enrolled_admin()
    db.session.rollback()  # end the test's transaction (SQLite: BEGIN IMMEDIATE holds the lock)
    page.goto(f"{demo_rp.base}/login")
    sign_in(page)
    page.wait_for_url(re.compile(r"/consent/"))
    # 継続的な利用 is never ticked by default; the demo needs its refresh token below.
    page.locator("input[value=offline_access]").check()
    page.get_by_role("button", name="同意してはじめる").click()
    page.wait_for_url(demo_rp.base + "/")
    shot(page, "demo-signed-in")
    assert not page.locator(".box.error").count()

    console = new_page()
    console.goto(f"{idp}/admin/login")
    shot(console, "admin-login")
    console.locator("#email").fill(admin.email)
    console.locator("#password").fill(admin.password)
    console.locator("#code").fill(admin.code())
    console.locator("form button[type=submit]").first.click()
    console.wait_for_url(re.compile(r"/admin/?$"))
    shot(console, "admin-dashboard")
    console.goto(f"{idp}/admin/clients/{demo_rp.client.client_id}")
    shot(console, "admin-client")
    console.locator("#confirm").fill(demo_rp.client.client_id)
    console.locator("form[action$='/revoke'] button[type=submit]").click()
    console.wait_for_load_state()
    shot(console, "admin-client-revoked")
    assert console.locator("main").get_by_text(re.compile("失効|Revoked")).first.is_visible()

    page.get_by_role("button", name=re.compile("userinfo を再取得")).click()
    page.wait_for_load_state()
    shot(page, "demo-userinfo-fails")
    error = page.locator(".box.error").first.inner_text()
    assert "401" in error and "invalid_token" in error, error
    # The refresh token dies with the client too.
    page.get_by_role("button", name=re.compile("トークンを更新")).click()
    page.wait_for_load_state()
    shot(page, "demo-refresh-fails")
    assert "トークン更新に失敗" in page.locator(".box.error").first.inner_text()
