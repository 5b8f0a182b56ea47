"""/account/export: everything held about the resident, as a JSON download."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from idp.access.models import PairwiseSubject
from idp.accounts.models import Resident
from idp.db import utcnow
from idp.extensions import db
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent
from tests import factories
from tests.helpers.accounts import sign_in
from tests.helpers.accounts import tags
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import tokens_for


@pytest.fixture
def resident(app):
    return factories.resident()


def add_touches(resident_id: str, other_id: str) -> None:
    rp = factories.rp(factories.company("C社"), grant_types=["client_credentials"],
                      redirect_uris=None, scopes=["touch_events"])
    db.session.add(Kiosk(client_id=rp.client_id, location="北2条広場"))
    now = utcnow()
    db.session.add_all([
        TouchEvent(client_id=rp.client_id, resident_id=resident_id, target="mine",
                   occurred_at=now - dt.timedelta(minutes=1), event_id="e1"),
        TouchEvent(client_id=rp.client_id, resident_id=other_id, target="theirs",
                   occurred_at=now, event_id="e2"),
        TouchEvent(client_id=rp.client_id, resident_id=None, target="anonymous",
                   occurred_at=now, event_id="e3"),
    ])
    db.session.commit()


def test_export_is_a_json_download(client, resident):
    """Test that /account/export answers application/json as an attachment."""
    sign_in(client)
    response = client.get("/account/export")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and resident.id in disposition
    assert response.headers["Cache-Control"] == "no-store"


def test_export_holds_everything_about_the_resident(client, resident):
    """Test that the export has the profile, consents, receipts, subjects, history and touches."""
    jiro = factories.resident("jiro@example.jp")
    add_touches(resident.id, jiro.id)
    rp = factories.rp(factories.company("A社"))
    issued = tokens_for(client, rp, scope="openid name email")
    data = json.loads(client.get("/account/export").text)
    assert data["format"] == "machi-id/resident-export/1"
    assert data["consortium_id"] == resident.display_id
    assert data["account"]["email"] == "hanako@example.jp"
    assert data["profile"] == {
        "family_name": "札幌", "given_name": "花子", "family_name_kana": "サッポロ",
        "given_name_kana": "ハナコ", "birth_year": 1990, "gender": "female",
        "postal_code": "060-0042", "locality": "札幌市中央区"}
    (consent,) = data["consents"]
    assert (consent["company"], consent["service"], consent["scopes"]) == (
        "A社", "XXXサービス", ["openid", "name", "email"])
    assert len(data["consent_receipts"]) == 1
    assert data["consent_receipts"][0]["piiPrincipalId"] == resident.id
    (subject,) = data["pairwise_subjects"]
    assert subject["sub"] == jwt_claims(issued["id_token"])["sub"]
    events = {e["event"] for e in data["history"]}
    assert {"resident:login:success", "consent:grant", "oauth:claims:release"} <= events
    assert [t["target"] for t in data["touch_events"]] == ["mine"]
    assert data["touch_events"][0]["location"] == "北2条広場"
    assert data["tokens"] and all("digest" not in key for t in data["tokens"] for key in t)


def test_export_leaves_secrets_out(client, resident):
    """Test that no password hash, TOTP secret, recovery code or digest is in the export."""
    sign_in(client)
    sign_in_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    row = db.session.scalar(select(Resident))
    row.totp_secret = sign_in_secret
    row.totp_enabled_at = utcnow()
    db.session.commit()
    exported = client.get("/account/export").text
    assert json.loads(exported)["account"]["two_step_verification"]["enabled"] is True
    assert "$argon2" not in exported
    assert "password" not in exported
    assert "digest" not in exported
    assert sign_in_secret not in exported


def test_export_is_audited(client, resident):
    """Test that each export writes resident:data:export."""
    sign_in(client)
    client.get("/account/export")
    assert [e.resident_id for e in tags("resident:data:export")] == [resident.id]


def test_export_needs_a_sign_in(client, resident):
    """Test that an anonymous visitor is sent to the login page."""
    response = client.get("/account/export")
    assert response.status_code == 303
    assert "/login" in response.headers["Location"]


def test_export_of_a_resident_with_nothing_yet(client, resident):
    """Test that a new resident's export has empty lists, not errors."""
    sign_in(client)
    data = client.get("/account/export").json
    assert data["consents"] == data["consent_receipts"] == data["touch_events"] == []
    assert db.session.scalar(select(PairwiseSubject)) is None
