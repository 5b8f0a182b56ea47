"""Tokens follow the consent in force at the moment of use, not at issuance.

A resident who re-consents with fewer items, whose consent expires, or whose
consent was given under terms since replaced, must see every token already
issued follow at once: UserInfo, introspection, refresh and the ID token of a
code redeemed late (``idp.consent.service.scopes_in_force_for``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.accounts.models import Resident
from idp.clients.models import Client
from idp.consent import service as consent_service
from idp.db import utcnow
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.terms import service as terms
from tests import factories
from tests.helpers.oauth import introspect
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import redeem
from tests.helpers.oauth import refresh
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo

WIDE = "openid name email postal_code offline_access"
NARROW = ["openid", "name", "offline_access"]


@pytest.fixture
def settings_overrides():
    return {"consent_ttl_days": 1}


@pytest.fixture
def rp(app):
    factories.resident()
    return factories.rp()


def narrow(client, rp):
    """The resident is asked again (prompt=consent) and unticks email and postal code."""
    return tokens_for(client, rp, scope=WIDE, consent_scopes=NARROW, prompt="consent")


def test_narrowed_consent_narrows_userinfo_of_a_token_already_issued(client, rp):
    """Test that unticking email and postal code stops the old access token releasing them."""
    old = tokens_for(client, rp, scope=WIDE)
    assert {"email", "address"} <= set(userinfo(client, old["access_token"]).json)
    narrow(client, rp)
    response = userinfo(client, old["access_token"])
    assert response.status_code == 200
    assert "email" not in response.json and "address" not in response.json
    assert response.json["given_name"] == "花子"


def test_narrowed_consent_narrows_introspection(client, rp):
    """Test that introspection reports the scope the consent still covers, for both tokens."""
    old = tokens_for(client, rp, scope=WIDE)
    assert introspect(client, rp, old["access_token"]).json["scope"] == WIDE
    narrow(client, rp)
    for token in (old["access_token"], old["refresh_token"]):
        body = introspect(client, rp, token).json
        assert body["active"] is True
        assert body["scope"] == "openid name offline_access"


def test_refresh_after_narrowing_yields_only_the_narrowed_scope(client, rp):
    """Test that a refresh after narrowing issues tokens for what is left (RFC 6749 §6)."""
    old = tokens_for(client, rp, scope=WIDE)
    narrow(client, rp)
    response = refresh(client, rp, old["refresh_token"])
    assert response.status_code == 200
    assert response.json["scope"] == "openid name offline_access"
    assert "email" not in userinfo(client, response.json["access_token"]).json
    # Asking for a dropped scope explicitly gets nothing more.
    again = client.post("/token", data={"grant_type": "refresh_token",
                                        "refresh_token": response.json["refresh_token"],
                                        "scope": "openid email"},
                        auth=(rp.client_id, rp.client_secret))
    assert again.status_code == 400 and again.json["error"] == "invalid_scope"


def test_narrowing_leaves_the_scopes_still_consented_at_full_strength(client, rp):
    """Test that a narrowed consent does not touch what it still covers: same sub, same name."""
    old = tokens_for(client, rp, scope=WIDE)
    before = userinfo(client, old["access_token"]).json
    narrow(client, rp)
    after = userinfo(client, old["access_token"]).json
    assert after == {k: v for k, v in before.items() if k not in ("email", "email_verified",
                                                                   "address")}


def _issued_just_before_expiry(client, rp, frozen):
    """Tokens issued ten minutes before the one-day consent runs out."""
    tokens_for(client, rp, scope=WIDE)
    frozen.tick(dt.timedelta(days=1, minutes=-10))
    return tokens_for(client, rp, scope=WIDE)  # signs in again; no consent asked


def test_expired_consent_stops_userinfo_introspection_and_refresh(client, rp):
    """Test that once the consent expires its live tokens release nothing and refresh fails."""
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        issued = _issued_just_before_expiry(client, rp, frozen)
        assert userinfo(client, issued["access_token"]).status_code == 200
        frozen.tick(dt.timedelta(minutes=11))  # the access token has 49 minutes left
        response = userinfo(client, issued["access_token"])
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert introspect(client, rp, issued["access_token"]).json == {"active": False}
        assert introspect(client, rp, issued["refresh_token"]).json == {"active": False}
        response = refresh(client, rp, issued["refresh_token"])
        assert response.status_code == 400 and response.json["error"] == "invalid_grant"


def test_a_code_redeemed_after_its_consent_expired_is_invalid_grant(client, rp):
    """Test that a code issued seconds before expiry yields no ID token after it."""
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        tokens_for(client, rp, scope=WIDE)
        frozen.tick(dt.timedelta(days=1, seconds=-30))
        verifier, challenge = factories.pkce_pair()
        result = factories.Browser(client).code_flow(
            rp, scope=WIDE, code_challenge=challenge, code_challenge_method="S256")
        frozen.tick(dt.timedelta(seconds=40))
        response = redeem(client, rp, result["code"], verifier)
        assert response.status_code == 400 and response.json["error"] == "invalid_grant"


def test_a_code_redeemed_after_narrowing_yields_only_the_narrowed_scope(client, rp):
    """Test that a code issued before the resident narrowed (another tab) gets an ID token
    and tokens for what is left only."""
    verifier, challenge = factories.pkce_pair()
    result = factories.Browser(client).code_flow(
        rp, scope=WIDE, code_challenge=challenge, code_challenge_method="S256")
    narrow(client, rp)
    response = redeem(client, rp, result["code"], verifier)
    assert response.status_code == 200
    assert response.json["scope"] == "openid name offline_access"
    claims = jwt_claims(response.json["id_token"])
    assert "email" not in claims and "address" not in claims
    assert claims["given_name"] == "花子"


def test_new_terms_end_what_the_old_consent_covered(client, rp):
    """Test that a consent given under terms since replaced no longer covers live tokens."""
    issued = tokens_for(client, rp, scope=WIDE)
    terms.publish_terms("2099-01", "https://example.jp/terms/2099-01",
                        summary="改定", summary_en="Revised")
    db.session.commit()
    assert userinfo(client, issued["access_token"]).status_code == 401
    assert introspect(client, rp, issued["access_token"]).json == {"active": False}
    assert refresh(client, rp, issued["refresh_token"]).json["error"] == "invalid_grant"


def test_a_kiosk_token_without_resident_keeps_its_scope(client):
    """Test that client_credentials tokens (no resident, no consent) are not narrowed."""
    company = factories.company()
    kiosk, secret, _ = kiosks.create_kiosk(company, "キオスク", "北1条西2丁目")
    kiosk_id = kiosk.id
    db.session.commit()
    token = client.post("/token", data={"grant_type": "client_credentials",
                                        "scope": "touch_events"},
                        auth=(kiosk_id, secret)).json["access_token"]
    body = client.post("/introspect", data={"token": token}, auth=(kiosk_id, secret)).json
    assert body["active"] is True and body["scope"] == "touch_events"


@pytest.mark.parametrize("state", ["in_force", "withdrawn", "expired", "old_terms"])
def test_the_sql_rule_and_the_model_rule_agree(app, rp, state):
    """Test that Consent.in_force and the SQL form token lookups use decide alike."""
    resident = db.session.scalar(select(Resident))
    client_row = db.session.get(Client, rp.client_id)
    consent = consent_service.grant(resident, client_row, ["openid", "email"],
                                    ["openid", "email"])
    now = utcnow()
    if state == "withdrawn":
        consent.withdrawn_at = now
    elif state == "expired":
        consent.expires_at = now - dt.timedelta(seconds=1)
    elif state == "old_terms":
        consent.terms_version = "1999-01"
    db.session.commit()
    in_sql = bool(consent_service.scopes_in_force(resident.id, rp.client_id))
    assert in_sql == consent.in_force(utcnow(), terms.current_version()) \
        == (state == "in_force")
