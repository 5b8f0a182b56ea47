"""Token endpoint, client_credentials grant (RFC 6749 §4.4)."""

from __future__ import annotations

import pytest

from tests import factories


@pytest.fixture
def machine(app):
    return factories.rp(grant_types=["client_credentials"], scopes=["touch_events"],
                        redirect_uris=None)


def cc(client, rp, **data):
    return client.post("/token", data={"grant_type": "client_credentials", **data},
                       auth=(rp.client_id, rp.client_secret))


def test_client_credentials_issues_an_access_token(client, machine):
    """Test that a confidential client gets an access token and no refresh token."""
    response = cc(client, machine, scope="touch_events")
    assert response.status_code == 200
    assert response.json["scope"] == "touch_events"
    assert "refresh_token" not in response.json and "id_token" not in response.json


def test_client_credentials_token_introspects_without_sub(client, machine):
    """Test that a machine token is active and has no resident subject."""
    token = cc(client, machine, scope="touch_events").json["access_token"]
    body = client.post("/introspect", data={"token": token},
                       auth=(machine.client_id, machine.client_secret)).json
    assert body["active"] is True and "sub" not in body


def test_resident_scopes_are_refused(app, client):
    """Test that openid or profile scopes cannot be asked for without a resident."""
    rp = factories.rp(grant_types=["client_credentials"], scopes=["openid", "touch_events"],
                      redirect_uris=None)
    response = cc(client, rp, scope="openid")
    assert response.status_code == 400 and response.json["error"] == "invalid_scope"


def test_unregistered_scope_is_refused(client, machine):
    """Test that a scope outside the client's registration is invalid_scope."""
    assert cc(client, machine, scope="email").json["error"] == "invalid_scope"


def test_unknown_scope_is_refused(client, machine):
    """Test that an unknown scope is invalid_scope."""
    assert cc(client, machine, scope="wallet").json["error"] == "invalid_scope"


def test_wrong_secret_is_invalid_client(client, machine):
    """Test that a wrong secret is invalid_client."""
    response = client.post("/token", data={"grant_type": "client_credentials"},
                           auth=(machine.client_id, "wrong"))
    assert response.status_code == 401 and response.json["error"] == "invalid_client"


def test_public_clients_cannot_register_client_credentials(app):
    """Test that a public client cannot be given client_credentials."""
    from idp.clients.service import ClientError

    with pytest.raises(ClientError):
        factories.rp(public=True, grant_types=["client_credentials"], redirect_uris=None)
