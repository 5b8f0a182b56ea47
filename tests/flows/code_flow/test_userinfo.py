"""OIDC UserInfo: the consented claims of the token's resident, and nothing for anyone else."""

from __future__ import annotations

import datetime as dt

from freezegun import freeze_time
from sqlalchemy import select

from idp.accounts.models import Resident
from idp.audit.models import AuditEvent
from idp.clients import service as clients
from idp.consent import service as consent_service
from idp.extensions import db
from tests import factories
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo


def releases() -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.tag == "oauth:claims:release",
                                 AuditEvent.data["channel"].as_string() == "userinfo")
        .order_by(AuditEvent.id)))


def test_get_returns_only_consented_claims(client):
    """Test that GET with a Bearer header returns sub, email and email_verified for "openid email"."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp, scope="openid email")
    response = userinfo(client, issued["access_token"])
    assert response.status_code == 200
    assert set(response.json) == {"sub", "email", "email_verified"}
    assert response.json["email"] == "hanako@example.jp"
    assert response.json["email_verified"] is True


def test_post_returns_only_consented_claims(client):
    """Test that POST with a Bearer header answers like GET."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp, scope="openid email")
    response = userinfo(client, issued["access_token"], method="POST")
    assert response.status_code == 200
    assert set(response.json) == {"sub", "email", "email_verified"}


def test_declined_scope_is_not_released(client):
    """Test that a scope requested but unticked on the consent page releases nothing."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp, scope="openid name email", consent_scopes=["openid", "email"])
    assert issued["scope"] == "openid email"
    assert set(userinfo(client, issued["access_token"]).json) == {"sub", "email",
                                                                 "email_verified"}


def test_sub_is_the_id_tokens_pairwise_sub(client):
    """Test that the userinfo sub equals the ID token's sub, which is not the resident id."""
    rp = factories.rp()
    resident = factories.resident()
    issued = tokens_for(client, rp, scope="openid email")
    sub = userinfo(client, issued["access_token"]).json["sub"]
    assert sub == jwt_claims(issued["id_token"])["sub"]
    assert resident.id not in sub


def test_no_token_is_401_with_www_authenticate(client):
    """Test that a request without a token is answered 401 with WWW-Authenticate: Bearer."""
    response = client.get("/userinfo")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")


def test_invalid_token_is_401_invalid_token(client):
    """Test that an unknown token is answered 401 invalid_token with WWW-Authenticate."""
    response = userinfo(client, "no-such-token")
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_token_without_openid_is_insufficient_scope(client):
    """Test that an access token without the openid scope is refused with 403 insufficient_scope."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp, scope="email")
    assert "id_token" not in issued
    response = userinfo(client, issued["access_token"])
    assert response.status_code == 403
    assert response.json["error"] == "insufficient_scope"


def test_client_credentials_token_is_refused(client):
    """Test that a client_credentials token gets 401/403 at userinfo, never a 500."""
    machine = factories.rp(grant_types=["client_credentials"], scopes=["touch_events"])
    issued = client.post("/token", data={"grant_type": "client_credentials",
                                         "scope": "touch_events"},
                         auth=(machine.client_id, machine.client_secret))
    assert issued.status_code == 200, issued.text
    response = userinfo(client, issued.json["access_token"])
    assert response.status_code == 403
    assert response.json["error"] == "insufficient_scope"
    assert releases() == []


def test_profile_change_shows_on_next_call(client):
    """Test that a profile change is released on the next userinfo call."""
    rp = factories.rp()
    resident = factories.resident()
    issued = tokens_for(client, rp, scope="openid name email")
    assert userinfo(client, issued["access_token"]).json["given_name"] == "花子"
    row = db.session.get(Resident, resident.id)
    row.given_name = "桜"
    row.email = "sakura@example.jp"
    db.session.commit()
    body = userinfo(client, issued["access_token"]).json
    assert body["given_name"] == "桜"
    assert body["name"] == "札幌 桜"
    assert body["email"] == "sakura@example.jp"


def test_release_is_audited_once_per_token(client):
    """Test that userinfo writes an oauth:claims:release event (claims, client, company) for
    each token's first release, and not again when the same token releases the same items."""
    rp = factories.rp()
    resident = factories.resident()
    issued = tokens_for(client, rp, scope="openid email")
    userinfo(client, issued["access_token"])
    userinfo(client, issued["access_token"], method="POST")
    assert len(releases()) == 1
    again = tokens_for(client, rp, scope="openid email")
    assert userinfo(client, again["access_token"]).status_code == 200
    events = releases()
    assert len(events) == 2
    for event in events:
        assert event.resident_id == resident.id
        assert event.client_id == rp.client_id
        assert event.company_id == rp.company_id
        assert event.data["claims"] == ["email", "email_verified"]


def test_refused_call_is_not_audited(client):
    """Test that a refused userinfo call releases nothing and records no release."""
    userinfo(client, "no-such-token")
    assert releases() == []


def test_token_of_revoked_client_is_401(client):
    """Test that the token of a revoked client is answered 401 invalid_token."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp, scope="openid email")
    clients.revoke_client(rp.client_id)
    db.session.commit()
    response = userinfo(client, issued["access_token"])
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"


def test_token_after_consent_withdrawal_is_401(client):
    """Test that withdrawing consent makes the client's token useless at userinfo."""
    rp = factories.rp()
    resident = factories.resident()
    issued = tokens_for(client, rp, scope="openid email")
    consent_service.withdraw(resident.id, rp.client_id)
    db.session.commit()
    response = userinfo(client, issued["access_token"])
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"


def test_expired_token_is_401(client):
    """Test that an access token past access_token_ttl is answered 401 invalid_token."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp, scope="openid email")
    with freeze_time(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3605)):
        response = userinfo(client, issued["access_token"])
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"


def test_response_is_not_cached(client):
    """Test that the userinfo response carries Cache-Control: no-store."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp, scope="openid email")
    assert "no-store" in userinfo(client, issued["access_token"]).headers["Cache-Control"]
