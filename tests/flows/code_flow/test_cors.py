"""CORS: public documents for everyone; token, UserInfo and revocation for the origins of
the requesting client's redirect URIs only; never the authorization endpoint or pages."""

from __future__ import annotations

import pytest

from tests import factories
from tests.helpers.oauth import tokens_for

SPA = "https://spa.example.jp"
OTHER = "https://other.example.jp"


@pytest.fixture
def spa(app):
    factories.resident()
    return factories.rp(public=True, redirect_uris=[SPA + "/callback"])


@pytest.fixture
def other(app):
    return factories.rp(public=True, redirect_uris=[OTHER + "/cb"])


def preflight(client, path, origin, method="POST"):
    return client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization"})


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration",
                                  "/.well-known/oauth-authorization-server", "/jwks.json",
                                  "/.well-known/ssf-configuration"])
def test_public_documents_are_readable_from_any_origin(client, path):
    """Test that discovery and JWKS answer Access-Control-Allow-Origin: *."""
    response = client.get(path, headers={"Origin": "https://anywhere.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(("path", "methods"), [("/token", "POST"), ("/userinfo", "GET, POST"),
                                               ("/revoke", "POST")])
def test_preflight_from_a_registered_origin(client, spa, path, methods):
    """Test that a preflight from a client's redirect-URI origin is allowed with
    the methods, Authorization, a Max-Age and Vary: Origin."""
    response = preflight(client, path, SPA)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == SPA
    assert response.headers["Access-Control-Allow-Methods"] == methods
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_preflight_from_an_unregistered_origin_gets_no_cors(client, spa):
    """Test that a preflight from an origin no client registered gets no CORS headers."""
    response = preflight(client, "/token", "https://evil.example")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_token_answer_is_readable_by_the_clients_own_origin_only(client, spa, other):
    """Test that the token response carries CORS for the requesting client's origin, and not
    for another client's registered origin (which passes the preflight)."""
    issued = tokens_for(client, spa, scope="openid email")
    assert issued["access_token"]
    data = {"grant_type": "authorization_code", "code": "x", "client_id": spa.client_id,
            "redirect_uri": spa.redirect_uri, "code_verifier": "v" * 43}
    own = client.post("/token", data=data, headers={"Origin": SPA})
    assert own.json["error"] == "invalid_grant"  # errors are readable too
    assert own.headers["Access-Control-Allow-Origin"] == SPA
    assert "Origin" in own.headers["Vary"]
    foreign = client.post("/token", data=data, headers={"Origin": OTHER})
    assert "Access-Control-Allow-Origin" not in foreign.headers
    assert "Origin" in foreign.headers["Vary"]


def test_code_exchange_from_the_spa_origin(client, spa):
    """Test that a public client's code exchange from its own origin is readable."""
    verifier, challenge = factories.pkce_pair()
    result = factories.Browser(client).code_flow(spa, scope="openid email",
                                                  code_challenge=challenge,
                                                  code_challenge_method="S256")
    response = client.post("/token", headers={"Origin": SPA}, data={
        "grant_type": "authorization_code", "code": result["code"], "client_id": spa.client_id,
        "redirect_uri": spa.redirect_uri, "code_verifier": verifier})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SPA


def test_userinfo_is_readable_by_the_tokens_client_origin_only(client, spa, other):
    """Test that UserInfo answers CORS for the token's client's origin and exposes
    WWW-Authenticate, and not for another client's origin."""
    token = tokens_for(client, spa, scope="openid email")["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    own = client.get("/userinfo", headers={**auth, "Origin": SPA})
    assert own.status_code == 200
    assert own.headers["Access-Control-Allow-Origin"] == SPA
    assert own.headers["Access-Control-Expose-Headers"] == "WWW-Authenticate"
    foreign = client.get("/userinfo", headers={**auth, "Origin": OTHER})
    assert foreign.status_code == 200
    assert "Access-Control-Allow-Origin" not in foreign.headers


def test_revocation_is_readable_by_the_clients_origin(client, spa):
    """Test that revocation answers CORS for the client's own origin."""
    token = tokens_for(client, spa, scope="openid email")["access_token"]
    response = client.post("/revoke", headers={"Origin": SPA},
                           data={"token": token, "client_id": spa.client_id})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SPA


def test_revoked_clients_origin_is_no_longer_allowed(app, client, spa):
    """Test that a revoked client's origin passes neither the preflight nor the request."""
    from idp.clients import service as clients
    from idp.extensions import db

    clients.revoke_client(spa.client_id)
    db.session.commit()
    assert "Access-Control-Allow-Origin" not in preflight(client, "/token", SPA).headers


@pytest.mark.parametrize("path", ["/authorize", "/login", "/introspect", "/device_authorization"])
def test_no_cors_for_authorize_pages_and_confidential_endpoints(client, spa, path):
    """Test that /authorize, HTML pages, introspection and device authorization never answer
    CORS, neither to a preflight nor to a request."""
    assert "Access-Control-Allow-Origin" not in preflight(client, path, SPA, "GET").headers
    response = client.get(path, headers={"Origin": SPA}) if path in ("/authorize", "/login") \
        else client.post(path, headers={"Origin": SPA}, data={"client_id": spa.client_id})
    assert "Access-Control-Allow-Origin" not in response.headers
