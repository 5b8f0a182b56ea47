"""Consent per client: remembered, and asked again for new items, new terms or expiry."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from idp.access.models import AuthorizationCode
from idp.accounts.models import Resident
from idp.consent import service as consent_service
from idp.consent.models import Consent
from idp.extensions import db
from tests import factories
from tests.factories import Browser


@pytest.fixture
def rp(app):
    factories.resident()
    return factories.rp()


def pkce():
    _, challenge = factories.pkce_pair()
    return {"code_challenge": challenge, "code_challenge_method": "S256"}


def goes_to_consent(response) -> bool:
    return urlsplit(response.headers.get("Location", "")).path.startswith("/consent/")


def test_consent_is_remembered_per_client(client, rp):
    """Test that a second sign-in to the same client skips the consent page."""
    browser = Browser(client)
    browser.code_flow(rp, **pkce())
    assert "code=" in browser.authorize(rp, **pkce()).headers["Location"]


def test_another_client_of_the_same_company_asks_again(app, client, rp):
    """Test that consent is per client, not per company."""
    browser = Browser(client)
    browser.code_flow(rp, **pkce())
    sibling = factories.rp(rp.company_id)
    assert goes_to_consent(browser.authorize(sibling, **pkce()))


def test_new_scope_asks_again(client, rp):
    """Test that a scope never decided on brings the consent page back."""
    browser = Browser(client)
    browser.code_flow(rp, scope="openid email", **pkce())
    assert goes_to_consent(browser.authorize(rp, scope="openid email gender", **pkce()))


def test_unticked_item_is_not_released_and_not_asked_again(app, client, rp):
    """Test that an optional item the resident unticked is left out and remembered."""
    browser = Browser(client)
    result = browser.code_flow(rp, scope="openid email gender",
                               consent_scopes=["openid", "email"], **pkce())
    code = db.session.scalar(select(AuthorizationCode))
    assert result["code"] and code.scope == "openid email"
    consent = db.session.scalar(select(Consent))
    assert consent.declined_scopes == ["gender"]
    assert "code=" in browser.authorize(rp, scope="openid email gender", **pkce()).headers[
        "Location"]
    # The remembered consent's code is granted within it: the unticked item stays out.
    again = db.session.scalar(select(AuthorizationCode).order_by(AuthorizationCode.id.desc()))
    assert again.id != code.id and again.scope == "openid email"


def test_required_openid_cannot_be_unticked(app, client, rp):
    """Test that openid stays granted even if the form omits it."""
    Browser(client).code_flow(rp, scope="openid email", consent_scopes=["email"], **pkce())
    assert db.session.scalar(select(Consent)).scopes == ["openid", "email"]


def test_scopes_not_requested_cannot_be_granted_by_the_form(app, client, rp):
    """Test that a forged form cannot grant items the client did not ask for."""
    Browser(client).code_flow(rp, scope="openid email",
                              consent_scopes=["openid", "email", "gender"], **pkce())
    assert db.session.scalar(select(Consent)).scopes == ["openid", "email"]


def test_new_terms_version_asks_again(app, client, rp):
    """Test that a consent given under older consortium terms is asked again."""
    browser = Browser(client)
    browser.code_flow(rp, **pkce())
    consent = db.session.scalar(select(Consent))
    consent.terms_version = "2025-01"
    db.session.commit()
    assert goes_to_consent(browser.authorize(rp, **pkce()))


def test_expired_consent_asks_again(client, rp):
    """Test that a consent older than consent_ttl_days is asked again."""
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        browser = Browser(client)
        browser.code_flow(rp, **pkce())
        frozen.tick(dt.timedelta(days=366))
        response = browser.authorize(rp, **pkce())
        if urlsplit(response.headers["Location"]).path == "/login":
            uid = factories.query(response.headers["Location"])["interaction"]
            response = client.get(browser.login(interaction=uid).headers["Location"])
        assert goes_to_consent(response)


def test_withdrawn_consent_asks_again(app, client, rp):
    """Test that after withdrawal the next sign-in asks for consent again."""
    browser = Browser(client)
    browser.code_flow(rp, **pkce())
    resident = db.session.scalar(select(Resident))
    consent_service.withdraw(resident.id, rp.client_id)
    db.session.commit()
    assert goes_to_consent(browser.authorize(rp, **pkce()))


def test_decline_records_nothing_granted(app, client, rp):
    """Test that declining answers access_denied and stores no consent."""
    browser = Browser(client)
    response = browser.authorize(rp, **pkce())
    uid = factories.query(response.headers["Location"])["interaction"]
    response = client.get(browser.login(interaction=uid).headers["Location"])
    response = browser.consent(urlsplit(response.headers["Location"]).path, decision="deny")
    params = factories.query(response.headers["Location"])
    assert params["error"] == "access_denied" and params["iss"] == "http://localhost"
    assert db.session.scalar(select(func.count()).select_from(Consent)) == 0


def test_consent_decision_must_be_allow_or_deny(app, client, rp):
    """Test that a missing or odd decision re-renders the page with 400 and changes nothing."""
    browser = Browser(client)
    response = browser.authorize(rp, **pkce())
    uid = factories.query(response.headers["Location"])["interaction"]
    response = client.get(browser.login(interaction=uid).headers["Location"])
    path = urlsplit(response.headers["Location"]).path
    assert browser.consent(path, decision="maybe").status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Consent)) == 0


def test_consent_page_requires_the_signed_in_resident(client, rp):
    """Test that a consent URL opened without a session goes to the login page."""
    browser = Browser(client)
    response = browser.authorize(rp, **pkce())
    uid = factories.query(response.headers["Location"])["interaction"]
    response = client.get(f"/consent/{uid}")
    assert urlsplit(response.headers["Location"]).path == "/login"


def test_one_consent_row_per_resident_and_client(app, client, rp):
    """Test that granting twice updates the row instead of adding one."""
    resident = db.session.scalar(select(Resident))
    from idp.clients.models import Client

    rp_row = db.session.get(Client, rp.client_id)
    consent_service.grant(resident, rp_row, ["openid", "email"], ["openid", "email"])
    consent_service.grant(resident, rp_row, ["openid", "email", "name"], ["openid", "name"])
    db.session.commit()
    rows = db.session.scalars(select(Consent)).all()
    assert len(rows) == 1 and rows[0].scopes == ["openid", "name"]
    assert rows[0].declined_scopes == ["email"]
