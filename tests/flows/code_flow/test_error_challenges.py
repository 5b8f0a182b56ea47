"""Error answers integrators parse: RFC 6750 §3 challenges and RFC 6749 §5.2 token errors.

- no Bearer credentials: 401 ``WWW-Authenticate: Bearer`` and no error code (RFC 6750 §3.1);
- invalid_client names the client's own method and challenges with the scheme it used;
- a token request that is not a form is invalid_request, not unsupported_grant_type.
"""

from __future__ import annotations

import pytest

from tests import factories
from tests.helpers.oauth import userinfo

MACHINE = {"grant_types": ["client_credentials"], "scopes": ["touch_events"]}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic Zm9vOmJhcg=="}],
                         ids=["no-header", "other-scheme"])
def test_userinfo_without_bearer_credentials_is_a_bare_challenge(client, headers):
    """Test that no Bearer credentials get 401 "WWW-Authenticate: Bearer" without an error code."""
    response = client.get("/userinfo", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "error" not in response.text


def test_userinfo_with_an_empty_bearer_is_invalid_request(client):
    """Test that "Authorization: Bearer" without a token is 400 invalid_request (§3.1)."""
    response = client.get("/userinfo", headers={"Authorization": "Bearer "})
    assert response.status_code == 400
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_request"')
    assert response.json["error"] == "invalid_request"


def test_userinfo_with_an_unknown_token_is_invalid_token(client):
    """Test that an unknown token is 401 with a Bearer invalid_token challenge."""
    response = userinfo(client, "no-such-token")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_touch_api_without_token_is_a_bare_challenge(client):
    """Test that the kiosk API (same resource protector) answers like /userinfo."""
    response = client.post("/api/touch-events", json={"events": []})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_secret_over_basic_is_401_with_a_basic_challenge(app, client):
    """Test that a wrong Basic secret gets 401, a Basic challenge and no list of methods."""
    rp = factories.rp(**MACHINE)
    response = client.post("/token", data={"grant_type": "client_credentials"},
                           auth=(rp.client_id, "wrong"))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="http://localhost"')
    assert "private_key_jwt" not in response.json["error_description"]


def test_basic_client_using_post_is_told_its_method(app, client):
    """Test that a client registered for client_secret_basic posting its secret in the
    body is told to use client_secret_basic, with the Basic challenge."""
    rp = factories.rp(**MACHINE)
    response = client.post("/token", data={"grant_type": "client_credentials",
                                           "client_id": rp.client_id,
                                           "client_secret": rp.client_secret})
    assert response.status_code == 401
    assert response.json["error_description"] == \
        "The client must authenticate with client_secret_basic."
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_post_client_with_a_wrong_secret_is_400_without_challenge(app, client):
    """Test that a client_secret_post client gets 400 invalid_client and no Basic challenge."""
    rp = factories.rp(**MACHINE, token_endpoint_auth_method="client_secret_post")
    response = client.post("/token", data={"grant_type": "client_credentials",
                                           "client_id": rp.client_id, "client_secret": "wrong"})
    assert response.status_code == 400
    assert response.json == {"error": "invalid_client",
                             "error_description": "Client authentication failed."}
    assert "WWW-Authenticate" not in response.headers


def test_post_client_using_basic_is_told_its_method(app, client):
    """Test that a client_secret_post client that used HTTP Basic gets 401 with the scheme it
    used (RFC 6749 §5.2) and is told its registered method."""
    rp = factories.rp(**MACHINE, token_endpoint_auth_method="client_secret_post")
    response = client.post("/token", data={"grant_type": "client_credentials"},
                           auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 401
    assert response.json["error_description"] == \
        "The client must authenticate with client_secret_post."
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_public_client_at_introspection_is_told_it_is_not_accepted(app, client):
    """Test that a public client at introspection is told its method is not accepted there."""
    rp = factories.rp(public=True)
    response = client.post("/introspect", data={"token": "x", "client_id": rp.client_id})
    assert response.status_code == 400
    assert response.json["error_description"] == \
        "The client's authentication method (none) is not accepted here."


def test_json_token_request_is_invalid_request(app, client):
    """Test that a JSON body at /token is invalid_request, not unsupported_grant_type."""
    rp = factories.rp(**MACHINE)
    response = client.post("/token", json={"grant_type": "client_credentials"},
                           auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in response.json["error_description"]


def test_form_without_grant_type_is_invalid_request(app, client):
    """Test that a form without grant_type is invalid_request (a missing parameter)."""
    response = client.post("/token", data={"code": "x"})
    assert response.status_code == 400
    assert response.json == {"error": "invalid_request",
                             "error_description": "Missing 'grant_type' parameter."}


def test_unknown_grant_type_is_still_unsupported_grant_type(app, client):
    """Test that a grant_type we do not support stays unsupported_grant_type."""
    response = client.post("/token", data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("data", [{}, {"client_id": "mc_NOSUCHCLIENT0000000", "client_secret": "x"}],
                         ids=["no-authentication", "unknown-client"])
def test_no_known_client_gets_the_basic_challenge(client, data):
    """Test that a request naming no known client gets 401 with the Basic challenge (the
    scheme we support, RFC 6749 §5.2)."""
    response = client.post("/token", data={"grant_type": "client_credentials", **data})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
