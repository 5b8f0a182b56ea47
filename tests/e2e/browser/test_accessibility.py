"""axe-core (npm, tests/e2e/browser/package.json) on the pages residents and admins see.

The app's Content-Security-Policy forbids inline scripts, so axe runs in a context
created with ``bypass_csp=True`` (``axe_context``: for these checks only; the story
tests keep the CSP).
No serious or critical violation is allowed, in Japanese and in English.
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from idp.extensions import db
from idp.kiosk import service as kiosks
from tests import factories
from tests.e2e.browser.conftest import AXE
from tests.e2e.browser.conftest import ROOT
from tests.e2e.browser.conftest import axe_context
from tests.e2e.browser.conftest import axe_run
from tests.e2e.browser.conftest import sign_in
from tests.helpers.admin import enrolled_admin

pytestmark = pytest.mark.skipif(not AXE.exists(), reason=(
    "axe-core is not installed: npm ci --prefix tests/e2e/browser"))


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_no_serious_axe_violations(lang, browser, shot, demo_rp, idp):
    """Test login, consent, device, account, history and admin pages with axe-core."""
    factories.resident()
    company = factories.company("C社")
    kiosk, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条広場")
    kiosk_id = kiosk.id
    db.session.commit()
    admin = enrolled_admin()
    db.session.rollback()

    context = axe_context(browser, locale="ja-JP" if lang == "ja" else "en-US",
                          viewport={"width": 390, "height": 844})
    page = context.new_page()
    found: list[dict] = []
    everything: list[dict] = []

    def check(name):
        assert page.locator("html").get_attribute("lang") == lang, (name, page.url)
        shot(page, f"{lang}-{name}")
        violations = axe_run(page, f"{lang} {name} {page.url}")
        everything.extend(violations)
        found.extend(v for v in violations if v["impact"] in ("serious", "critical"))

    try:
        page.goto(f"{idp}/lang/{lang}")
        page.goto(f"{demo_rp.base}/login?ui_locales={lang}")
        page.wait_for_url(re.compile(r"/login\b"))
        check("login")
        sign_in(page)
        page.wait_for_url(re.compile(r"/consent/"))
        check("consent")
        page.locator("button[value=allow]").click()
        page.wait_for_url(demo_rp.base + "/")

        grant = requests.post(f"{idp}/device_authorization", auth=(kiosk_id, secret),
                              data={"scope": "openid touch_events"}, timeout=10).json()
        page.goto(f"{idp}/device")
        check("device")
        page.goto(grant["verification_uri_complete"])
        page.locator("form.form button[type=submit]").first.click()
        page.wait_for_url(re.compile(r"/device/confirm"))
        check("device-confirm")

        for path in ("/account", "/account/consents", "/account/data", "/account/history",
                     "/account/profile", "/account/security", "/register", "/dev/outbox/",
                     "/transparency"):
            page.goto(idp + path)
            check(path.strip("/").replace("/", "-"))

        page.goto(f"{idp}/admin/login")
        check("admin-login")
        page.locator("#email").fill(admin.email)
        page.locator("#password").fill(admin.password)
        page.locator("#code").fill(admin.code())
        page.locator("form button[type=submit]").first.click()
        page.wait_for_url(re.compile(r"/admin/?$"))
        check("admin-dashboard")
        for path in ("/admin/companies", "/admin/clients", f"/admin/clients/{demo_rp.client.client_id}",
                     "/admin/kiosks", "/admin/sensors", "/admin/categories", "/admin/contracts",
                     "/admin/monitoring", "/admin/city-data", "/admin/audit"):
            page.goto(idp + path)
            check(path.strip("/").replace("/", "-")[:40])
    finally:
        context.close()
        # Every finding, moderate and minor too, for people to read (CI keeps artifacts/).
        report = ROOT / "artifacts" / f"axe-{lang}.json"
        report.parent.mkdir(exist_ok=True)
        report.write_text(json.dumps(everything, ensure_ascii=False, indent=1))
    assert not found, json.dumps(found, ensure_ascii=False, indent=1)
