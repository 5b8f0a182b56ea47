"""The console asks before it cuts a company off (issue 15, item 7): the first post of a
suspension shows a confirmation page and changes nothing; revocation needs the id typed."""

from __future__ import annotations

import pytest

from idp.clients.models import Company
from idp.extensions import db
from tests import factories
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.admin import hidden


@pytest.fixture
def browser(client):
    browser = AdminBrowser(client, enrolled_admin())
    assert browser.login().status_code == 303
    return browser


def status(company_id: str) -> str:
    db.session.rollback()
    return db.session.get(Company, company_id).status


def test_suspension_first_shows_what_stops_then_suspends(browser):
    """Test that the suspend button leads to a page naming the services cut off, with a
    new one-time form; only that form suspends."""
    company_id = factories.company("A社")
    rp = factories.rp(company_id)
    page = f"/admin/companies/{company_id}"
    asked = browser.form(page, f"{page}/suspend")
    assert asked.status_code == 200
    assert "XXXサービス" in asked.text and 'name="confirm" value="yes"' in asked.text
    assert rp.client_id[:10] in asked.text
    assert status(company_id) == "active" and events("company:suspend") == []
    response = browser.client.post(f"{page}/suspend", data={
        "csrf_token": hidden(asked.text, "csrf_token", f"{page}/suspend"),
        "form_token": hidden(asked.text, "form_token", f"{page}/suspend"),
        "return_to": page, "confirm": "yes"})
    assert response.status_code == 303
    assert status(company_id) == "suspended"


def test_the_confirmation_form_works_once(browser):
    """Test that posting the confirmation page's form twice suspends once and the second
    is refused as replayed."""
    company_id = factories.company()
    page = f"/admin/companies/{company_id}"
    asked = browser.form(page, f"{page}/suspend")
    data = {"csrf_token": hidden(asked.text, "csrf_token", f"{page}/suspend"),
            "form_token": hidden(asked.text, "form_token", f"{page}/suspend"),
            "return_to": page, "confirm": "yes"}
    assert browser.client.post(f"{page}/suspend", data=data).status_code == 303
    assert browser.client.post(f"{page}/suspend", data=data).status_code == 409
    assert len(events("company:suspend")) == 1


def test_confirmation_without_csrf_changes_nothing(browser):
    """Test that a forged confirmation (no CSRF token) is refused."""
    company_id = factories.company()
    page = browser.client.get(f"/admin/companies/{company_id}")
    response = browser.client.post(f"/admin/companies/{company_id}/suspend", data={
        "form_token": hidden(page.text, "form_token", f"/admin/companies/{company_id}/suspend"),
        "confirm": "yes"})
    assert response.status_code == 400
    assert status(company_id) == "active"


def test_revocation_without_the_typed_id_changes_nothing(browser):
    """Test that revoking a company without typing its id is refused and audited."""
    company_id = factories.company()
    page = f"/admin/companies/{company_id}"
    response = browser.form(page, f"{page}/revoke", confirm="")
    assert response.status_code == 303
    assert status(company_id) == "active"
    (refusal,) = events("admin:action:refused")
    assert refusal.data["action"] == "company:revoke"
