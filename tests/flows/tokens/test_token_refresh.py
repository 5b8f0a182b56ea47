"""Refresh tokens: rotation and reuse detection (RFC 6749 §6, RFC 9700 §4.14.2)."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.consent import service as consent_service
from idp.extensions import db
from tests import factories


@pytest.fixture
def rp(app):
    factories.resident()
    return factories.rp()


def refresh(client, rp, refresh_token, **extra):
    return client.post("/token", data={"grant_type": "refresh_token",
                                       "refresh_token": refresh_token, **extra},
                       auth=(rp.client_id, rp.client_secret))


def active(client, rp, token):
    return client.post("/introspect", data={"token": token},
                       auth=(rp.client_id, rp.client_secret)).json["active"]


def test_refresh_rotates_the_refresh_token(client, rp):
    """Test that each refresh returns a new access and refresh token."""
    first = factories.tokens(client, rp)
    second = refresh(client, rp, first["refresh_token"])
    assert second.status_code == 200
    body = second.json
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert set(body["scope"].split()) == set(first["scope"].split())


def test_reuse_of_a_rotated_refresh_token_revokes_the_family(client, rp):
    """Test that presenting a rotated refresh token kills every token of its family."""
    first = factories.tokens(client, rp)
    second = refresh(client, rp, first["refresh_token"]).json
    reuse = refresh(client, rp, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json["error"] == "invalid_grant"
    assert not active(client, rp, second["access_token"])
    assert not active(client, rp, second["refresh_token"])
    assert refresh(client, rp, second["refresh_token"]).json["error"] == "invalid_grant"
    tags = db.session.scalars(select(AuditEvent.tag)).all()
    assert "oauth:refresh:reuse" in tags


def test_reuse_detection_leaves_other_families_alone(client, rp):
    """Test that another sign-in's tokens survive a reuse in one family."""
    one = factories.tokens(client, rp)
    other = factories.tokens(client, rp)
    refresh(client, rp, one["refresh_token"])
    refresh(client, rp, one["refresh_token"])
    assert active(client, rp, other["access_token"])


def test_refreshed_access_token_works_at_userinfo(client, rp):
    """Test that a refreshed access token keeps the resident's pairwise sub."""
    first = factories.tokens(client, rp)
    sub = client.get("/userinfo", headers={"Authorization": "Bearer " + first["access_token"]}).json
    second = refresh(client, rp, first["refresh_token"]).json
    again = client.get("/userinfo", headers={"Authorization": "Bearer " + second["access_token"]})
    assert again.json["sub"] == sub["sub"]


def test_refresh_may_narrow_the_scope(client, rp):
    """Test that a refresh may ask for fewer scopes."""
    first = factories.tokens(client, rp)
    body = refresh(client, rp, first["refresh_token"], scope="openid email offline_access").json
    assert set(body["scope"].split()) == {"openid", "email", "offline_access"}


def test_refresh_cannot_widen_the_scope(client, rp):
    """Test that a refresh asking for more than was granted is invalid_scope."""
    first = factories.tokens(client, rp, scope="openid email offline_access")
    response = refresh(client, rp, first["refresh_token"], scope="openid email gender")
    assert response.json["error"] == "invalid_scope"


def test_refresh_by_another_client_is_invalid_grant(app, client, rp):
    """Test that a refresh token works only for the client it was issued to."""
    first = factories.tokens(client, rp)
    other = factories.rp(rp.company_id)
    assert refresh(client, other, first["refresh_token"]).json["error"] == "invalid_grant"
    assert refresh(client, rp, first["refresh_token"]).status_code == 200


def test_expired_refresh_token_is_invalid_grant(client, rp):
    """Test that a refresh token past refresh_token_ttl is refused."""
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        first = factories.tokens(client, rp)
        frozen.tick(dt.timedelta(days=31))
        assert refresh(client, rp, first["refresh_token"]).json["error"] == "invalid_grant"


def test_refresh_after_consent_withdrawal_is_invalid_grant(app, client, rp):
    """Test that withdrawing consent stops refreshes at once."""
    first = factories.tokens(client, rp)
    resident_id = db.session.scalar(select(AuditEvent.resident_id)
                                    .where(AuditEvent.tag == "consent:grant"))
    consent_service.withdraw(resident_id, rp.client_id)
    db.session.commit()
    assert refresh(client, rp, first["refresh_token"]).json["error"] == "invalid_grant"
    assert not active(client, rp, first["access_token"])


def test_unknown_or_missing_refresh_token(client, rp):
    """Test that junk refresh tokens are invalid_grant and a missing one invalid_request."""
    assert refresh(client, rp, "nope").json["error"] == "invalid_grant"
    response = client.post("/token", data={"grant_type": "refresh_token"},
                           auth=(rp.client_id, rp.client_secret))
    assert response.json["error"] == "invalid_request"


def test_public_client_refresh(app, client):
    """Test that a public client refreshes with its client_id and rotation applies."""
    factories.resident()
    rp = factories.rp(public=True)
    first = factories.tokens(client, rp)
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
            "client_id": rp.client_id}
    assert client.post("/token", data=data).status_code == 200
    assert client.post("/token", data=data).json["error"] == "invalid_grant"
