"""Revocation is immediate: a revoked client or a suspended company is cut off at once.

Each test checks every path right after the change, in the same run and with
no waiting: client authentication, introspection, userinfo, refresh, pending
authorization codes and device codes, the touch-event API and the sign-in
page. Reinstatement brings back client authentication and consents, never a
revoked token.
"""

from __future__ import annotations

import re

import pytest

from idp.access.models import AuthorizationCode
from idp.access.models import Token
from idp.clients import service as clients
from idp.clients.models import Company
from idp.consent import service as consent_service
from idp.extensions import db
from idp.kiosk import service as kiosks
from tests import factories
from tests.factories import Browser
from tests.factories import csrf
from tests.helpers.admin import events
from tests.helpers.oauth import introspect
from tests.helpers.oauth import redeem
from tests.helpers.oauth import refresh
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "openid name email offline_access"


@pytest.fixture
def setup(app):
    """A resident, an app (A) and a resource server (B) of the same company."""
    factories.resident()
    company_id = factories.company("A社")
    app_rp = factories.rp(company_id)
    resource_server = factories.rp(company_id, grant_types=["client_credentials"],
                                   scopes=["touch_events"], redirect_uris=None)
    return company_id, app_rp, resource_server


def pending_code(client, rp) -> tuple[str, str]:
    """A code issued (the resident has consented) but not redeemed yet."""
    verifier, challenge = factories.pkce_pair()
    result = Browser(client).code_flow(rp, scope=SCOPE, code_challenge=challenge,
                                       code_challenge_method="S256")
    return result["code"], verifier


def client_credentials(client, rp):
    return client.post("/token", data={"grant_type": "client_credentials",
                                       "scope": "touch_events"},
                       auth=(rp.client_id, rp.client_secret))


def authorize_page(client, rp):
    return Browser(client).authorize(rp, scope="openid")


def test_revoking_a_client_refuses_the_four_token_paths_at_once(client, setup):
    """Test that right after revoke_client: client authentication fails (invalid_client),
    introspection says inactive, userinfo answers 401 and refresh fails — plus pending
    codes and the sign-in page."""
    _, app_rp, resource_server = setup
    issued = tokens_for(client, app_rp, SCOPE)
    code, verifier = pending_code(client, app_rp)
    assert introspect(client, resource_server, issued["access_token"]).json["active"] is True

    clients.revoke_client(app_rp.client_id, actor="test")
    db.session.commit()

    # 1. client authentication
    response = client.post("/token", data={"grant_type": "authorization_code", "code": "x",
                                           "redirect_uri": app_rp.redirect_uri},
                           auth=(app_rp.client_id, app_rp.client_secret))
    assert (response.status_code, response.json["error"]) == (401, "invalid_client")
    # 2. introspection (by the company's resource server, still active)
    for value in (issued["access_token"], issued["refresh_token"]):
        assert introspect(client, resource_server, value).json == {"active": False}
    # 3. userinfo
    response = userinfo(client, issued["access_token"])
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # 4. refresh
    response = refresh(client, app_rp, issued["refresh_token"])
    assert (response.status_code, response.json["error"]) == (401, "invalid_client")
    # the pending code, and a resident coming to sign in
    response = redeem(client, app_rp, code, verifier)
    assert response.json["error"] == "invalid_client"
    page = authorize_page(client, app_rp)
    assert page.status_code == 403
    assert "このサービスとの連携は終了しました" in page.text  # "This service is no longer connected"
    db.session.rollback()
    assert all(t.revoked_at is not None for t in db.session.scalars(db.select(Token)))
    assert all(c.used_at is not None or c.expires_at <= factories.clients.utcnow()
               for c in db.session.scalars(db.select(AuthorizationCode)))


def test_suspension_cuts_off_and_reinstatement_restores_only_authentication(client, setup):
    """Test that a suspension refuses every path at once; reinstatement lets the clients
    authenticate again and keeps consents, but no revoked token or code comes back."""
    company_id, app_rp, resource_server = setup
    issued = tokens_for(client, app_rp, SCOPE)
    code, verifier = pending_code(client, app_rp)

    clients.suspend_company(company_id, actor="test")
    db.session.commit()

    assert client_credentials(client, resource_server).json["error"] == "invalid_client"
    response = introspect(client, resource_server, issued["access_token"])
    assert (response.status_code, response.json["error"]) == (401, "invalid_client")
    assert userinfo(client, issued["access_token"]).status_code == 401
    assert refresh(client, app_rp, issued["refresh_token"]).json["error"] == "invalid_client"
    assert redeem(client, app_rp, code, verifier).json["error"] == "invalid_client"
    assert authorize_page(client, app_rp).status_code == 403

    clients.reinstate_company(company_id, actor="test")
    db.session.commit()

    # Authentication is back …
    assert client_credentials(client, resource_server).status_code == 200
    # … but nothing the suspension killed.
    for value in (issued["access_token"], issued["refresh_token"]):
        assert introspect(client, resource_server, value).json == {"active": False}
    assert userinfo(client, issued["access_token"]).status_code == 401
    assert refresh(client, app_rp, issued["refresh_token"]).json["error"] == "invalid_grant"
    assert redeem(client, app_rp, code, verifier).json["error"] == "invalid_grant"
    # The resident's consent is still in force: signing in again asks nothing.
    resident_id = db.session.scalar(db.select(Token.resident_id)
                                    .where(Token.resident_id.is_not(None)).limit(1))
    assert "email" in consent_service.scopes_in_force(resident_id, app_rp.client_id)
    response = Browser(client).authorize(app_rp, scope="openid email")
    assert response.status_code == 302
    assert "code=" in response.headers["Location"]
    fresh = tokens_for(client, app_rp, "openid email")
    assert userinfo(client, fresh["access_token"]).json["email"] == "hanako@example.jp"


def test_reinstating_is_refused_unless_suspended_and_never_after_revocation(app, setup):
    """Test that an active company cannot be 'reinstated', nor a revoked one."""
    company_id, *_ = setup
    with pytest.raises(clients.ClientError, match="not suspended"):
        clients.reinstate_company(company_id)
    db.session.rollback()
    clients.revoke_company(company_id)
    db.session.commit()
    with pytest.raises(clients.ClientError, match="revoked for good"):
        clients.reinstate_company(company_id)
    with pytest.raises(clients.ClientError, match="revoked"):
        clients.suspend_company(company_id)
    db.session.rollback()
    company = db.session.get(Company, company_id)
    assert company.status == "revoked"
    assert all(c.revoked_at is not None for c in company.clients)


def test_suspension_is_idempotent(app, setup):
    """Test that suspending a suspended company changes nothing and writes one event."""
    company_id, *_ = setup
    first = clients.suspend_company(company_id).suspended_at
    db.session.commit()
    assert clients.suspend_company(company_id).suspended_at == first
    db.session.commit()
    assert len(events("company:suspend")) == 1


# ---- kiosks: device codes and the touch-event API ------------------------------------------

@pytest.fixture
def kiosk(app):
    factories.resident()
    company_id = factories.company("C社")
    row, secret, _ = kiosks.create_kiosk(company_id, "北2条広場サイネージ", "北2条西4丁目")
    db.session.commit()
    return factories.RP(row.id, secret, company_id, redirect_uri="")


def test_suspension_stops_device_codes_and_the_touch_event_api(client, kiosk):
    """Test that a kiosk's token is refused by the API, its pending device code cannot be
    polled or confirmed, and after reinstatement the old device code stays dead."""
    token = client.post("/token", data={"grant_type": "client_credentials",
                                        "scope": "touch_events"},
                        auth=(kiosk.client_id, kiosk.client_secret)).json["access_token"]
    started = client.post("/device_authorization", data={"scope": "openid touch_events"},
                          auth=(kiosk.client_id, kiosk.client_secret)).json
    body = {"events": [{"occurred_at": factories.clients.utcnow().isoformat(),
                        "target": "map"}]}
    assert client.post("/api/touch-events", json=body,
                       headers={"Authorization": f"Bearer {token}"}).status_code == 201

    clients.suspend_company(kiosk.company_id, actor="test")
    db.session.commit()

    assert client.post("/api/touch-events", json=body,
                       headers={"Authorization": f"Bearer {token}"}).status_code == 401
    poll = client.post("/token", data={"grant_type": DEVICE_GRANT,
                                       "device_code": started["device_code"]},
                       auth=(kiosk.client_id, kiosk.client_secret))
    assert poll.json["error"] == "invalid_client"
    page = client.get("/device", query_string={"user_code": started["user_code"]})
    entered = client.post("/device", data={"user_code": started["user_code"],
                                           "csrf_token": csrf(page.text)})
    assert client.get(entered.headers["Location"]).status_code == 403

    clients.reinstate_company(kiosk.company_id, actor="test")
    db.session.commit()
    poll = client.post("/token", data={"grant_type": DEVICE_GRANT,
                                       "device_code": started["device_code"]},
                       auth=(kiosk.client_id, kiosk.client_secret))
    assert poll.json["error"] == "expired_token"
    assert client.post("/api/touch-events", json=body,
                       headers={"Authorization": f"Bearer {token}"}).status_code == 401


# ---- the same through the `idp` command ------------------------------------------------------

def test_cli_clients_revoke_cuts_off_at_once(client, cli, setup):
    """Test `idp clients revoke`: the four paths are refused right after the command."""
    _, app_rp, resource_server = setup
    issued = tokens_for(client, app_rp, SCOPE)
    result = cli("clients", "revoke", app_rp.client_id, "--json")
    assert result.exit_code == 0, result.output
    assert introspect(client, resource_server, issued["access_token"]).json == {"active": False}
    assert userinfo(client, issued["access_token"]).status_code == 401
    assert refresh(client, app_rp, issued["refresh_token"]).json["error"] == "invalid_client"
    assert redeem(client, app_rp, "any", "x" * 43).json["error"] == "invalid_client"


def test_cli_companies_suspend_and_reinstate(client, cli, setup):
    """Test `idp companies suspend` then `reinstate`: cut off, then only authentication back."""
    company_id, app_rp, resource_server = setup
    issued = tokens_for(client, app_rp, SCOPE)
    assert cli("companies", "suspend", company_id).exit_code == 0
    assert client_credentials(client, resource_server).json["error"] == "invalid_client"
    assert userinfo(client, issued["access_token"]).status_code == 401
    assert refresh(client, app_rp, issued["refresh_token"]).json["error"] == "invalid_client"
    result = cli("companies", "reinstate", company_id, "--json")
    assert result.exit_code == 0, result.output
    assert re.search(r'"status": "active"', result.output)
    assert client_credentials(client, resource_server).status_code == 200
    assert refresh(client, app_rp, issued["refresh_token"]).json["error"] == "invalid_grant"
    assert introspect(client, resource_server, issued["access_token"]).json == {"active": False}
