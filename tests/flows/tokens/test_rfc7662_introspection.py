"""RFC 7662 token introspection: who may ask, what an active token says, when it dies."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.access.models import PairwiseSubject
from idp.clients import service as clients
from idp.extensions import db
from tests import factories
from tests.helpers.oauth import introspect
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import refresh
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo

ISSUER = "http://localhost"
ACCESS_TOKEN_TTL = 3600


@pytest.fixture
def rp():
    return factories.rp()


@pytest.fixture
def resident():
    return factories.resident()


@pytest.fixture
def issued(client, rp, resident):
    """A token response for `rp` with a refresh token."""
    return tokens_for(client, rp, scope="openid email offline_access")


def test_active_access_token_describes_itself(client, rp, resident, issued):
    """Test that an active access token introspects with client_id, scope, sub, exp, iat, iss, token_type."""
    body = introspect(client, rp, issued["access_token"]).json
    assert body["active"] is True
    assert body["client_id"] == rp.client_id
    assert body["scope"] == "openid email offline_access"
    assert body["token_type"] == "Bearer"
    assert body["iss"] == ISSUER
    assert body["exp"] - body["iat"] == ACCESS_TOKEN_TTL
    assert abs(body["iat"] - dt.datetime.now(dt.UTC).timestamp()) < 60


def test_introspected_sub_is_the_pairwise_sub(client, rp, resident, issued):
    """Test that the introspected sub is the company's pairwise sub, as in the ID token."""
    body = introspect(client, rp, issued["access_token"]).json
    row = db.session.scalar(select(PairwiseSubject).where(
        PairwiseSubject.resident_id == resident.id, PairwiseSubject.company_id == rp.company_id))
    assert body["sub"] == row.sub == jwt_claims(issued["id_token"])["sub"]
    assert body["sub"] != resident.id


def test_refresh_token_with_hint_is_active(client, rp, issued):
    """Test that a refresh token introspected with token_type_hint=refresh_token is active."""
    body = introspect(client, rp, issued["refresh_token"], token_type_hint="refresh_token").json
    assert body["active"] is True
    assert body["client_id"] == rp.client_id
    assert body["token_type"] != "Bearer"
    assert body["exp"] - body["iat"] > ACCESS_TOKEN_TTL


def test_refresh_token_without_hint_is_active(client, rp, issued):
    """Test that a refresh token introspected without a hint is found and active."""
    body = introspect(client, rp, issued["refresh_token"]).json
    assert body["active"] is True
    assert body["client_id"] == rp.client_id


def test_access_token_with_refresh_hint_is_still_found(client, rp, issued):
    """Test that a wrong token_type_hint only changes the search order (RFC 7662 §2.1)."""
    body = introspect(client, rp, issued["access_token"], token_type_hint="refresh_token").json
    assert body["active"] is True
    assert body["token_type"] == "Bearer"


def test_rotated_refresh_token_is_inactive(client, rp, issued):
    """Test that a refresh token already rotated introspects as inactive."""
    assert refresh(client, rp, issued["refresh_token"]).status_code == 200
    assert introspect(client, rp, issued["refresh_token"]).json == {"active": False}


def test_client_of_same_company_may_introspect(client, rp, issued):
    """Test that another client of the same company sees the token as active."""
    sibling = factories.rp(rp.company_id)
    body = introspect(client, sibling, issued["access_token"]).json
    assert body["active"] is True
    assert body["client_id"] == rp.client_id


def test_client_of_another_company_learns_nothing(client, rp, issued):
    """Test that a client of another company gets only {"active": false}."""
    stranger = factories.rp()
    response = introspect(client, stranger, issued["access_token"])
    assert response.status_code == 200
    assert response.json == {"active": False}
    assert introspect(client, stranger, issued["refresh_token"]).json == {"active": False}


def test_unknown_token_is_inactive(client, rp, issued):
    """Test that a token this server never issued is {"active": false}."""
    assert introspect(client, rp, "no-such-token").json == {"active": False}


def test_public_client_cannot_introspect(client, issued):
    """Test that a public client is refused with invalid_client."""
    public = factories.rp(public=True)
    response = client.post("/introspect", data={"token": issued["access_token"],
                                                "client_id": public.client_id})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_client"


def test_public_client_of_same_company_cannot_introspect(client, rp, issued):
    """Test that a public client of the token's own company is refused with invalid_client."""
    public = factories.rp(rp.company_id, public=True)
    response = client.post("/introspect", data={"token": issued["access_token"],
                                                "client_id": public.client_id})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_client"
    assert "active" not in response.json


def test_missing_token_is_invalid_request(client, rp):
    """Test that a request without `token` is answered invalid_request."""
    response = client.post("/introspect", data={}, auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_unsupported_token_type_hint(client, rp, issued):
    """Test that an unknown token_type_hint is answered unsupported_token_type."""
    response = introspect(client, rp, issued["access_token"], token_type_hint="id_token")
    # Authlib answers this one 401 (its UnsupportedTokenTypeError is a ForbiddenError).
    assert response.status_code == 401
    assert response.json["error"] == "unsupported_token_type"


def test_wrong_secret_is_invalid_client_401(client, rp, issued):
    """Test that a wrong secret over HTTP Basic is answered 401 invalid_client."""
    response = client.post("/introspect", data={"token": issued["access_token"]},
                           auth=(rp.client_id, "wrong-secret"))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert "active" not in response.json


def test_wrong_secret_over_basic_sends_www_authenticate(client, rp, issued):
    """Test that a 401 to HTTP Basic carries WWW-Authenticate (RFC 6749 §5.2)."""
    response = client.post("/introspect", data={"token": issued["access_token"]},
                           auth=(rp.client_id, "wrong-secret"))
    assert response.status_code == 401
    assert response.headers.get("WWW-Authenticate", "").lower().startswith("basic")


def test_unknown_client_is_invalid_client(client, issued):
    """Test that an unknown client_id is answered invalid_client."""
    response = client.post("/introspect", data={"token": issued["access_token"]},
                           auth=("mc_nosuchclient", "secret"))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


def test_client_secret_post_is_refused_for_basic_client(client, rp, issued):
    """Test that a client registered for client_secret_basic cannot send its secret in the body."""
    response = client.post("/introspect", data={"token": issued["access_token"],
                                                "client_id": rp.client_id,
                                                "client_secret": rp.client_secret})
    assert response.json["error"] == "invalid_client"


def test_expired_access_token_is_inactive(client, rp, issued):
    """Test that an access token past access_token_ttl introspects as inactive."""
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ACCESS_TOKEN_TTL + 5)
    with freeze_time(later):
        assert introspect(client, rp, issued["access_token"]).json == {"active": False}
        # The refresh token lives on.
        assert introspect(client, rp, issued["refresh_token"]).json["active"] is True


def test_access_token_just_before_expiry_is_active(client, rp, issued):
    """Test that an access token a little before access_token_ttl is still active."""
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ACCESS_TOKEN_TTL - 60)
    with freeze_time(later):
        assert introspect(client, rp, issued["access_token"]).json["active"] is True


def test_revoked_token_is_inactive(client, rp, issued):
    """Test that an access token revoked at /revoke introspects as inactive."""
    response = client.post("/revoke", data={"token": issued["access_token"]},
                           auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 200
    assert introspect(client, rp, issued["access_token"]).json == {"active": False}


def test_revoke_client_kills_tokens_and_authentication(client, rp, issued):
    """Test that revoke_client makes its tokens inactive and its credentials useless at once."""
    sibling = factories.rp(rp.company_id)
    assert introspect(client, sibling, issued["access_token"]).json["active"] is True
    clients.revoke_client(rp.client_id)
    db.session.commit()
    assert introspect(client, sibling, issued["access_token"]).json == {"active": False}
    assert introspect(client, sibling, issued["refresh_token"]).json == {"active": False}
    response = introspect(client, rp, issued["access_token"])
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert userinfo(client, issued["access_token"]).status_code == 401


def test_suspend_company_kills_tokens_and_authentication(client, rp, issued):
    """Test that suspend_company makes its tokens inactive and its clients unable to authenticate."""
    sibling = factories.rp(rp.company_id)
    clients.suspend_company(rp.company_id)
    db.session.commit()
    for who in (rp, sibling):
        response = introspect(client, who, issued["access_token"])
        assert response.status_code == 401
        assert response.json["error"] == "invalid_client"
    assert introspect(client, factories.rp(), issued["access_token"]).json == {"active": False}
    assert userinfo(client, issued["access_token"]).status_code == 401
    assert refresh(client, rp, issued["refresh_token"]).json["error"] == "invalid_client"


def test_response_is_not_cached(client, rp, issued):
    """Test that the introspection response carries Cache-Control: no-store."""
    response = introspect(client, rp, issued["access_token"])
    assert "no-store" in response.headers["Cache-Control"]
    inactive = introspect(client, rp, "no-such-token")
    assert "no-store" in inactive.headers["Cache-Control"]


def test_client_credentials_token_has_no_sub(client):
    """Test that a client_credentials token introspects as active without a sub."""
    machine = factories.rp(grant_types=["client_credentials"], scopes=["touch_events"])
    issued = client.post("/token", data={"grant_type": "client_credentials",
                                         "scope": "touch_events"},
                         auth=(machine.client_id, machine.client_secret))
    assert issued.status_code == 200, issued.text
    body = introspect(client, machine, issued.json["access_token"]).json
    assert body["active"] is True
    assert body["scope"] == "touch_events"
    assert "sub" not in body
