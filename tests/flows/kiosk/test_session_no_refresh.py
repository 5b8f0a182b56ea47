"""A kiosk session cannot be stretched with a refresh token: a device-flow client is never
registered with the refresh_token grant or offline_access, a client row from before that
rule still gets no refresh token and cannot refresh, and the session's idle timeout and
maximum length follow the token's family (its first grant), not the token's own grant."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp import config
from idp import secrets
from idp.access.models import Token
from idp.clients import service as clients
from idp.clients.models import Client
from idp.clients.validation import DEVICE_CODE
from idp.clients.validation import ClientSettings
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.kiosk.models import TouchEvent
from tests import factories
from tests.helpers.device import approve
from tests.helpers.device import authorize
from tests.helpers.device import poll
from tests.helpers.oauth import refresh

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
SCOPE = "openid touch_events offline_access"


@pytest.fixture
def legacy_kiosk(app):
    """A kiosk client whose row was given refresh_token and offline_access before
    registration refused them (written directly: the service no longer allows it)."""
    factories.resident()
    company = factories.company("C社")
    client, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条西4丁目")
    row = db.session.get(Client, client.id)
    row.grant_types = [*row.grant_types, "refresh_token"]
    row.scopes = [*row.scopes, "offline_access"]
    db.session.commit()
    return factories.RP(client.id, secret, company, redirect_uri="")


def device_grant(client, kiosk, scope=SCOPE) -> dict:
    body = authorize(client, kiosk, scope=scope)
    approve(client, body["user_code"])
    response = poll(client, kiosk, body["device_code"])
    assert response.status_code == 200, response.text
    return response.json


def touch(client, token: str, moment: dt.datetime):
    return client.post("/api/touch-events",
                       json={"events": [{"occurred_at": moment.isoformat(), "target": "map"}]},
                       headers={"Authorization": f"Bearer {token}"})


def refreshed_before_the_rule(device_token: dict) -> str:
    """The access token a refresh of the device token gave before the rule: same family,
    ``grant_type="refresh_token"``, the ordinary lifetime. Returns its string."""
    first = db.session.scalar(select(Token).where(
        Token.access_token_digest == secrets.digest(device_token["access_token"])))
    access = secrets.token(32)
    now = T0 + dt.timedelta(seconds=config.settings().kiosk_max_session + 60)
    db.session.add(Token(
        client_id=first.client_id, resident_id=first.resident_id, subject=first.subject,
        grant_type="refresh_token", scope=first.scope, family_id=first.family_id,
        access_token_digest=secrets.digest(access), issued_at=now,
        access_expires_at=now + dt.timedelta(seconds=config.settings().access_token_ttl)))
    first.refresh_used_at = now
    db.session.commit()
    return access


@pytest.mark.parametrize(("grants", "scopes", "refused"), [
    ([DEVICE_CODE, "client_credentials", "refresh_token"], ["openid", "touch_events"],
     "refresh_token grant"),
    ([DEVICE_CODE, "client_credentials"], ["openid", "touch_events", "offline_access"],
     "offline_access scope"),
])
def test_a_kiosk_client_cannot_be_registered_to_refresh(app, grants, scopes, refused):
    """Test that registration refuses refresh_token or offline_access with device_code."""
    company = factories.company("C社")
    with pytest.raises(clients.ClientError, match=refused):
        clients.register_client(company, "K", grant_types=grants, scopes=scopes,
                                purpose="p", purpose_en="p")
    db.session.rollback()
    assert db.session.scalar(select(Client)) is None


def test_a_kiosk_client_cannot_be_changed_to_refresh(app):
    """Test that an edit adding refresh_token or offline_access to a kiosk is refused."""
    company = factories.company("C社")
    client, _secret, _ = kiosks.create_kiosk(company, "K", "北2条西4丁目")
    db.session.commit()
    for grants, scopes in (([DEVICE_CODE, "refresh_token"], ["openid", "touch_events"]),
                           ([DEVICE_CODE], ["openid", "touch_events", "offline_access"])):
        settings = ClientSettings(name="K", redirect_uris=[], post_logout_redirect_uris=[],
                                  grant_types=grants, scopes=scopes, purpose="p")
        with pytest.raises(clients.ClientError, match="kiosk client"):
            clients.update_client(client.id, settings)
        db.session.rollback()
    row = db.session.get(Client, client.id)
    assert "refresh_token" not in row.grant_types and "offline_access" not in row.scopes


def test_other_clients_keep_refresh_tokens(app):
    """Test that the rule is for device-flow clients only (a code-flow app may refresh)."""
    company = factories.company("A社")
    client, _secret = clients.register_client(
        company, "A", grant_types=["authorization_code", "refresh_token"],
        scopes=["openid", "offline_access"], redirect_uris=[factories.REDIRECT_URI],
        purpose="p", purpose_en="p")
    assert "refresh_token" in client.grant_types


def test_a_kiosk_row_from_before_the_rule_gets_no_refresh_token(client, legacy_kiosk):
    """Test that the token endpoint itself gives a device-flow token no refresh token."""
    with freeze_time(T0):
        token = device_grant(client, legacy_kiosk)
    assert "refresh_token" not in token
    assert token["expires_in"] == config.settings().kiosk_max_session
    row = db.session.scalar(select(Token).where(Token.grant_type == DEVICE_CODE))
    assert row.refresh_token_digest is None and row.refresh_expires_at is None


def test_a_refresh_token_a_kiosk_holds_from_before_is_refused(client, legacy_kiosk):
    """Test that a refresh token of a device-flow family is not honoured (invalid_grant)."""
    with freeze_time(T0) as frozen:
        token = device_grant(client, legacy_kiosk)
        row = db.session.scalar(select(Token).where(Token.grant_type == DEVICE_CODE))
        held = secrets.token(32)  # as the server issued before the rule
        row.refresh_token_digest = secrets.digest(held)
        row.refresh_expires_at = T0 + dt.timedelta(days=30)
        db.session.commit()
        frozen.tick(dt.timedelta(seconds=config.settings().kiosk_max_session + 600))
        answer = refresh(client, legacy_kiosk, held)
    assert answer.status_code == 400 and answer.json["error"] == "invalid_grant"
    assert "access_token" not in answer.json
    assert db.session.scalar(select(Token).where(Token.grant_type == "refresh_token")) is None
    assert token["access_token"]


def test_a_refreshed_token_is_still_held_to_the_maximum_length(client, legacy_kiosk):
    """Test the audit's attack: a refreshed token of a device-flow family (issued before
    the rule, alive for the ordinary hour) cannot record a touch 25 minutes after the
    approval; the session ends and the family dies."""
    settings = config.settings()
    with freeze_time(T0) as frozen:
        token = device_grant(client, legacy_kiosk)
        refreshed = refreshed_before_the_rule(token)
        late = T0 + dt.timedelta(seconds=settings.kiosk_max_session + 600)
        frozen.move_to(late)
        response = touch(client, refreshed, late)
        after = touch(client, refreshed, late)
    assert response.status_code == 400, response.json
    assert response.json["session_ended"] == "max_length"
    assert db.session.scalar(select(TouchEvent)) is None
    assert after.status_code == 401


def test_a_refreshed_token_is_still_held_to_the_idle_timeout(client, legacy_kiosk):
    """Test that the idle gap counts from the approval for a refreshed device-flow token."""
    settings = config.settings()
    with freeze_time(T0) as frozen:
        token = device_grant(client, legacy_kiosk)
        refreshed = refreshed_before_the_rule(token)
        late = T0 + dt.timedelta(seconds=settings.kiosk_idle_timeout + 30)
        frozen.move_to(late)
        response = touch(client, refreshed, late)
    assert response.status_code == 400
    assert response.json["session_ended"] == "idle"


def test_a_refreshed_code_flow_token_has_no_kiosk_session(client):
    """Test that a family begun with a code (not a kiosk) is not cut at the kiosk limits."""
    factories.resident()
    rp = factories.rp(scopes=["openid", "touch_events", "offline_access"])
    settings = config.settings()
    with freeze_time(T0) as frozen:
        first = factories.tokens(client, rp, scope=SCOPE)
        late = T0 + dt.timedelta(seconds=settings.kiosk_max_session + 600)
        frozen.move_to(late)
        second = refresh(client, rp, first["refresh_token"]).json
        response = touch(client, second["access_token"], late)
    assert response.status_code == 201, response.json
