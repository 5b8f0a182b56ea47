"""The data exchange in a real browser, on a phone: B社's service asks for registered data
(the draft terms' item 5) that A社 contributed; the resident sees A社 named as the source
with the value, picks the link's expiry and consents; B社 receives the value; the resident
then finds the item on /account/data and the link on /account/consents. axe-core runs on
the consent screen and on /account/data (serious and critical violations fail)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from demo.relying_party import create_app as create_rp
from idp.accounts.models import Resident
from idp.extensions import db
from tests import factories
from tests.e2e.browser.conftest import AXE
from tests.e2e.browser.conftest import axe_check
from tests.e2e.browser.conftest import axe_context
from tests.e2e.browser.conftest import claims_shown
from tests.e2e.browser.conftest import sign_in
from tests.helpers import data_links
from tests.helpers.live import serve_wsgi


@pytest.fixture
def exchange_rp(app, migrated, idp):
    """B社's service (the demo relying party) asking for registered:language, and A社's
    contribution of the resident's language."""
    factories.resident()
    resident_id = db.session.scalar(select(Resident.id))
    source = data_links.setup_source("A社", keys=("language",))
    data_links.contribute(resident_id, source.company_id, source.contract_id, "ja")
    holder: dict = {}

    def make(base):
        exchange = data_links.setup(("language",), source="A社（別契約）", recipient="B社",
                                    redirect_uris=[f"{base}/callback"],
                                    post_logout_redirect_uris=[f"{base}/"],
                                    policy_uri=f"{base}/")
        holder["rp"] = exchange.rp
        db.session.rollback()
        return create_rp(idp, exchange.rp.client_id, exchange.rp.client_secret,
                         f"{base}/callback", title="B社 YYYサービス",
                         scope="openid profile email registered:language")

    with serve_wsgi(make) as base:
        yield base


@pytest.fixture
def phone_for_axe(browser):
    """A phone whose context lets axe-core's script in (``axe_context``, as
    test_accessibility.py does: for these checks only)."""
    context = axe_context(browser, locale="ja-JP", is_mobile=True, has_touch=True,
                          viewport={"width": 375, "height": 812})
    yield context.new_page()
    context.close()


def test_item_5_on_a_phone_then_account_data(phone_for_axe, shot, exchange_rp, idp):
    """Test the consent item with its source and value, the link's expiry, the release,
    and the resident's own view of what is held and linked; axe on both pages."""
    page = phone_for_axe
    page.goto(exchange_rp + "/login")
    page.wait_for_url(re.compile(r"/login\b"))
    sign_in(page)
    page.wait_for_url(re.compile(r"/consent/"))
    shot(page, "consent-item-5")
    item = page.locator("input[name=scope][value='registered:language']")
    assert item.count() == 1 and item.is_checked()
    body = page.locator("main").inner_text()
    assert "使用言語" in body and "A社" in body
    expiry = page.locator("select[name=link_expiry]")
    assert expiry.count() == 1
    expiry.select_option("90d")
    if AXE.exists():
        assert axe_check(page, "consent item 5") == []
    page.locator("button[name=decision][value=allow]").click()
    page.wait_for_url(re.compile(re.escape(exchange_rp)))
    shot(page, "service-received")
    shown = claims_shown(page)
    assert "ja" in shown.get("registered_data.language.value", "") + \
        " ".join(shown.values()), shown

    page.goto(f"{idp}/account/data")
    shot(page, "account-data")
    text = page.locator("main").inner_text()
    assert "A社" in text and "使用言語" in text
    if AXE.exists():
        assert axe_check(page, "account data") == []

    page.goto(f"{idp}/account/consents")
    shot(page, "account-consents-links")
    text = page.locator("main").inner_text()
    assert "A社" in text and "B社" in text or "YYY" in text
