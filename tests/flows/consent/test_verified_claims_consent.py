"""A verified_claims consent covers the claim names that were asked for, and no others."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from idp.consent.models import Consent
from idp.db import utcnow
from idp.extensions import db
from idp.proofing import service as proofing
from tests import factories
from tests.factories import Browser
from tests.helpers.admin import enrolled_admin
from tests.helpers.oauth import redeem
from tests.helpers.oauth import userinfo


def claims_param(*names: str) -> str:
    return json.dumps({"userinfo": {"verified_claims": {
        "verification": {"trust_framework": None},
        "claims": {name: None for name in names}}}})


@pytest.fixture
def rp(app):
    resident = factories.resident()
    proofing.record_proofing(resident.id, ["name", "birthdate", "address"], "my_number_card",
                             utcnow().date(), enrolled_admin().id, actor="admin")
    db.session.commit()
    return factories.rp(verified_claims_allowed=True)


def authorize(browser, rp, claims: str, **params):
    """An authorization request; signs in when asked. Returns the response after sign-in."""
    verifier, challenge = factories.pkce_pair()
    response = browser.authorize(rp, scope="openid name", claims=claims,
                                 code_challenge=challenge, code_challenge_method="S256",
                                 **params)
    if "/login" in response.headers.get("Location", ""):
        uid = factories.query(response.headers["Location"])["interaction"]
        response = browser.client.get(browser.login(interaction=uid).headers["Location"])
    return response, verifier


def consent_and_redeem(client, browser, rp, claims: str, scopes=("openid", "name",
                                                                  "verified_claims")):
    response, verifier = authorize(browser, rp, claims)
    assert "/consent/" in response.headers["Location"]
    response = browser.consent(urlsplit(response.headers["Location"]).path, scopes=list(scopes))
    code = factories.query(response.headers["Location"])["code"]
    return redeem(client, rp, code, verifier).json


def consent_row() -> Consent:
    db.session.rollback()
    return db.session.scalar(db.select(Consent))


def test_the_consent_records_the_claim_names_asked_for(client, rp):
    """Test that ticking the item records verified_claims with each claim name asked for."""
    browser = Browser(client)
    consent_and_redeem(client, browser, rp, claims_param("given_name", "family_name"))
    consent = consent_row()
    assert {"verified_claims", "verified_claims.given_name",
            "verified_claims.family_name"} <= set(consent.scopes)
    assert "verified_claims.birthdate" not in consent.scopes


def test_a_request_for_another_claim_name_asks_again(client, rp):
    """Test that a consent for the verified name does not cover the verified birth date."""
    browser = Browser(client)
    consent_and_redeem(client, browser, rp, claims_param("given_name"))
    same, _ = authorize(browser, rp, claims_param("given_name"))
    assert "code" in factories.query(same.headers["Location"])
    more, _ = authorize(browser, rp, claims_param("given_name", "birthdate"))
    assert "/consent/" in more.headers["Location"]


def test_prompt_none_with_another_claim_name_is_consent_required(client, rp):
    """Test that prompt=none cannot stretch a verified_claims consent to another claim name."""
    browser = Browser(client)
    consent_and_redeem(client, browser, rp, claims_param("given_name"))
    same, _ = authorize(browser, rp, claims_param("given_name"), prompt="none")
    assert "code" in factories.query(same.headers["Location"])
    response, _ = authorize(browser, rp, claims_param("birthdate"), prompt="none")
    params = factories.query(response.headers["Location"])
    assert params["error"] == "consent_required"
    assert "code" not in params


def test_after_consenting_again_the_new_name_is_released(client, rp):
    """Test that once the resident agrees to the birth date too, UserInfo sends both."""
    browser = Browser(client)
    consent_and_redeem(client, browser, rp, claims_param("given_name"))
    body = consent_and_redeem(client, browser, rp, claims_param("given_name", "birthdate"))
    verified = userinfo(client, body["access_token"]).json["verified_claims"]
    assert verified["claims"] == {"given_name": "花子", "birthdate": "1990"}


def test_release_follows_the_names_in_the_consent_in_force(client, rp):
    """Test that a token releases only the verified claim names the consent still covers."""
    browser = Browser(client)
    body = consent_and_redeem(client, browser, rp, claims_param("given_name", "birthdate"))
    consent = consent_row()
    consent.scopes = [s for s in consent.scopes if s != "verified_claims.birthdate"]
    db.session.commit()
    verified = userinfo(client, body["access_token"]).json["verified_claims"]
    assert verified["claims"] == {"given_name": "花子"}


def test_unticking_the_item_declines_its_names_too(client, rp):
    """Test that the names follow the box: declined together, and not asked again for them."""
    browser = Browser(client)
    body = consent_and_redeem(client, browser, rp, claims_param("given_name"),
                              scopes=("openid", "name"))
    assert "verified_claims" not in userinfo(client, body["access_token"]).json
    consent = consent_row()
    assert {"verified_claims", "verified_claims.given_name"} <= set(consent.declined_scopes)
    assert not any(s.startswith("verified_claims") for s in consent.scopes)
    same, _ = authorize(browser, rp, claims_param("given_name"), prompt="none")
    assert "code" in factories.query(same.headers["Location"])
