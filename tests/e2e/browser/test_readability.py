"""The admin console and the resident's account pages on a phone (375×812) and a desktop
(1280×800), in Japanese and English (issue 15, item 8): no sideways scrolling of the
page, no serious or critical axe-core violation, chart text of 11 px or more.

Screenshots (Japanese) of the dashboard and of the account overview, consents and history are
kept in ``artifacts/screenshots/readability/`` (committed: people review them).
"""

from __future__ import annotations

import json
import re

import pytest

from idp.accounts.models import Resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients import service as clients
from idp.consent import service as consent_service
from idp.extensions import db
from tests import factories
from tests.e2e.browser.conftest import AXE
from tests.e2e.browser.conftest import SCREENSHOTS
from tests.e2e.browser.conftest import axe_check
from tests.e2e.browser.conftest import sign_in
from tests.helpers.admin import enrolled_admin

pytestmark = pytest.mark.skipif(not AXE.exists(), reason=(
    "axe-core is not installed: npm ci --prefix tests/e2e/browser"))

VIEWPORTS = {"phone": {"width": 375, "height": 812}, "desktop": {"width": 1280, "height": 800}}
KEPT = SCREENSHOTS / "readability"
# The pages whose screenshots are kept.
SHOWN = {"admin-dashboard", "account", "account-consents", "account-history",
         "account-confirm"}

CHART_TEXT = """() => Array.from(document.querySelectorAll('svg.chart-svg')).flatMap(svg => {
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  return Array.from(svg.querySelectorAll('text')).map(
    t => parseFloat(t.getAttribute('font-size')) * scale);
})"""


def seed() -> str:
    """A resident sharing items with two companies' services (lines that overlap on the
    dashboard), with releases in the history, and a few audit events."""
    resident = factories.resident()
    for name in ("札幌まちなかポイント株式会社", "B社"):
        rp = factories.rp(factories.company(name))
        client = clients.get_client(rp.client_id)
        row = db.session.get(Resident, resident.id)
        consent_service.grant(row, client, ["openid", "name", "birth_year", "email"],
                              ["openid", "name", "birth_year", "email"])
        for channel in ("id_token", "userinfo"):
            record(AuditTag.CLAIMS_RELEASE, resident_id=resident.id, client_id=client.id,
                   company_id=client.company_id, claims=["sub", "name", "birthdate"],
                   channel=channel)
    db.session.commit()
    return resident.id


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_console_and_account_pages_fit_phone_and_desktop(lang, browser, idp):
    """Test the dashboard, a company, the audit trail and the account pages at 375 and
    1280 px: the page never scrolls sideways, axe finds nothing serious, and the charts'
    text is at least 11 px."""
    seed()
    admin = enrolled_admin()
    company_id = clients.list_companies()[0].id
    db.session.rollback()
    context = browser.new_context(bypass_csp=True, locale="ja-JP" if lang == "ja" else "en-US",
                                  viewport=VIEWPORTS["phone"])
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list = []
    KEPT.mkdir(parents=True, exist_ok=True)

    def check(name: str, size: str):
        assert page.locator("html").get_attribute("lang") == lang, (name, page.url)
        width = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
        if width[0] > width[1]:
            problems.append({"where": f"{lang} {size} {name}", "scroll": width})
        problems.extend(axe_check(page, f"{lang} {size} {name}"))
        if name == "admin-dashboard":
            sizes = page.evaluate(CHART_TEXT)
            if not sizes or min(sizes) < 11:
                problems.append({"where": f"{lang} {size} {name}", "chart_text": min(sizes or [0])})
        if name in SHOWN and lang == "ja":
            page.screenshot(path=str(KEPT / f"{name}-{size}-{lang}.png"), full_page=True)

    try:
        page.goto(f"{idp}/lang/{lang}")
        page.goto(f"{idp}/account")
        page.wait_for_url(re.compile(r"/login\b"))
        sign_in(page)
        page.wait_for_url(re.compile(r"/account$"))
        page.goto(f"{idp}/admin/login")
        page.locator("#email").fill(admin.email)
        page.locator("#password").fill(admin.password)
        page.locator("#code").fill(admin.code())
        page.locator("form button[type=submit]").first.click()
        page.wait_for_url(re.compile(r"/admin/?$"))
        for size, viewport in VIEWPORTS.items():
            page.set_viewport_size(viewport)
            for path in ("/admin/", f"/admin/companies/{company_id}", "/admin/audit",
                         "/account", "/account/consents", "/account/history"):
                page.goto(idp + path)
                name = path.strip("/").replace("/", "-")
                check({"admin": "admin-dashboard"}.get(name, "admin-company" if name.startswith(
                    "admin-companies") else name), size)
            # Stopping one item first asks (nothing changes until its form is sent).
            page.goto(idp + "/account/consents")
            page.locator("form.item-stop button").first.click()
            page.wait_for_load_state()
            assert page.locator("input[name=confirm][value=yes]").count() == 1
            check("account-confirm", size)
    finally:
        context.close()
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
