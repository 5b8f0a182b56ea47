"""RFC 7009 token revocation: access tokens alone, refresh tokens with their family."""

from __future__ import annotations

from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.extensions import db
from tests import factories
from tests.helpers.oauth import introspect
from tests.helpers.oauth import refresh
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo

OFFLINE = "openid email offline_access"


def revoke(client, rp: factories.RP, token: str, **params):
    return client.post("/revoke", data={"token": token, **params},
                       auth=(rp.client_id, rp.client_secret))


def active(client, rp: factories.RP, token: str) -> bool:
    return introspect(client, rp, token).json["active"]


def revoke_events() -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.tag == "oauth:token:revoke").order_by(AuditEvent.id)))


def test_revoked_access_token_is_dead(client):
    """Test that a revoked access token introspects inactive and is refused at userinfo."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp)
    assert userinfo(client, issued["access_token"]).status_code == 200
    response = revoke(client, rp, issued["access_token"], token_type_hint="access_token")
    assert response.status_code == 200
    assert not active(client, rp, issued["access_token"])
    info = userinfo(client, issued["access_token"])
    assert info.status_code == 401
    assert info.json["error"] == "invalid_token"


def test_revoking_access_token_takes_its_issuance(client):
    """Test that revoking an access token also revokes the refresh token issued with it (RFC 7009 §2.1 MAY)."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp, scope=OFFLINE)
    assert revoke(client, rp, issued["access_token"]).status_code == 200
    assert not active(client, rp, issued["refresh_token"])
    assert refresh(client, rp, issued["refresh_token"]).json["error"] == "invalid_grant"


def test_revoking_access_token_spares_rest_of_family(client):
    """Test that revoking an old access token leaves the tokens rotated from it alive."""
    rp = factories.rp()
    factories.resident()
    first = tokens_for(client, rp, scope=OFFLINE)
    second = refresh(client, rp, first["refresh_token"]).json
    assert revoke(client, rp, first["access_token"]).status_code == 200
    assert not active(client, rp, first["access_token"])
    assert active(client, rp, second["access_token"])
    assert refresh(client, rp, second["refresh_token"]).status_code == 200


def test_revoking_refresh_token_revokes_family(client):
    """Test that revoking a refresh token kills every access token issued with it or its rotations."""
    rp = factories.rp()
    factories.resident()
    first = tokens_for(client, rp, scope=OFFLINE)
    rotated = refresh(client, rp, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json
    assert active(client, rp, first["access_token"])
    assert active(client, rp, second["access_token"])

    response = revoke(client, rp, second["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200

    for token in (first["access_token"], second["access_token"], second["refresh_token"]):
        assert not active(client, rp, token)
    again = refresh(client, rp, second["refresh_token"])
    assert again.status_code == 400
    assert again.json["error"] == "invalid_grant"


def test_revoking_original_refresh_token_revokes_rotations(client):
    """Test that revoking an already-rotated refresh token still kills its descendants."""
    rp = factories.rp()
    factories.resident()
    first = tokens_for(client, rp, scope=OFFLINE)
    second = refresh(client, rp, first["refresh_token"]).json
    assert revoke(client, rp, first["refresh_token"]).status_code == 200
    assert not active(client, rp, second["access_token"])
    response = refresh(client, rp, second["refresh_token"])
    assert response.json["error"] == "invalid_grant"


def test_revoking_refresh_token_spares_other_families(client):
    """Test that revoking one grant's refresh token leaves another grant's tokens alive."""
    rp = factories.rp()
    factories.resident()
    browser = factories.Browser(client)
    one = tokens_for(client, rp, scope=OFFLINE, browser=browser)
    two = tokens_for(client, rp, scope=OFFLINE, browser=browser)
    assert revoke(client, rp, one["refresh_token"]).status_code == 200
    assert not active(client, rp, one["access_token"])
    assert active(client, rp, two["access_token"])
    assert refresh(client, rp, two["refresh_token"]).status_code == 200


def test_unknown_token_answers_200(client):
    """Test that revoking a token the server does not know answers 200 (RFC 7009 §2.2)."""
    rp = factories.rp()
    response = revoke(client, rp, "no-such-token")
    assert response.status_code == 200
    assert response.json == {}


def test_another_clients_token_is_refused_and_stays_active(client):
    """Test that a client cannot revoke another client's token, which stays active."""
    owner = factories.rp()
    other = factories.rp(owner.company_id)
    factories.resident()
    issued = tokens_for(client, owner, scope=OFFLINE)
    for token in (issued["access_token"], issued["refresh_token"]):
        response = revoke(client, other, token)
        assert response.status_code == 400
        assert response.json["error"] == "invalid_grant"
    assert active(client, owner, issued["access_token"])
    assert active(client, owner, issued["refresh_token"])
    assert revoke_events() == []


def test_public_client_revokes_own_token_with_client_id(client):
    """Test that a public client revokes its own token with client_id only."""
    public = factories.rp(public=True)
    sibling = factories.rp(public.company_id)
    factories.resident()
    issued = tokens_for(client, public, scope=OFFLINE)
    assert active(client, sibling, issued["access_token"])
    response = client.post("/revoke", data={"token": issued["refresh_token"],
                                            "client_id": public.client_id})
    assert response.status_code == 200, response.text
    assert not active(client, sibling, issued["access_token"])
    assert refresh(client, public, issued["refresh_token"]).json["error"] == "invalid_grant"


def test_public_client_cannot_revoke_another_clients_token(client):
    """Test that a public client naming itself cannot revoke a token of another client."""
    owner = factories.rp()
    public = factories.rp(owner.company_id, public=True)
    factories.resident()
    issued = tokens_for(client, owner)
    response = client.post("/revoke", data={"token": issued["access_token"],
                                            "client_id": public.client_id})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"
    assert active(client, owner, issued["access_token"])


def test_confidential_client_must_authenticate(client):
    """Test that a confidential client sending only its client_id is refused with invalid_client."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp)
    response = client.post("/revoke", data={"token": issued["access_token"],
                                            "client_id": rp.client_id})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert active(client, rp, issued["access_token"])


def test_wrong_secret_is_invalid_client(client):
    """Test that a wrong secret over HTTP Basic is answered 401 invalid_client."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp)
    response = client.post("/revoke", data={"token": issued["access_token"]},
                           auth=(rp.client_id, "wrong-secret"))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert active(client, rp, issued["access_token"])


def test_missing_token_is_invalid_request(client):
    """Test that a request without `token` is answered invalid_request."""
    rp = factories.rp()
    response = client.post("/revoke", data={}, auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_unsupported_token_type_hint(client):
    """Test that an unknown token_type_hint is answered unsupported_token_type."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp)
    response = revoke(client, rp, issued["access_token"], token_type_hint="id_token")
    assert response.json["error"] == "unsupported_token_type"
    assert active(client, rp, issued["access_token"])


def test_revocation_is_audited(client):
    """Test that a revocation writes an oauth:token:revoke event naming resident, client and company."""
    rp = factories.rp()
    resident = factories.resident()
    issued = tokens_for(client, rp, scope=OFFLINE)
    assert revoke(client, rp, issued["access_token"]).status_code == 200
    assert revoke(client, rp, issued["refresh_token"]).status_code == 200
    events = revoke_events()
    assert len(events) == 2
    for event in events:
        assert event.resident_id == resident.id
        assert event.client_id == rp.client_id
        assert event.company_id == rp.company_id
        assert event.data["reason"] == "revocation_endpoint"
    assert "token_id" in events[0].data
    assert "family" in events[1].data


def test_revoking_twice_answers_200(client):
    """Test that revoking an already revoked access token again still answers 200."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp)
    assert revoke(client, rp, issued["access_token"]).status_code == 200
    response = revoke(client, rp, issued["access_token"])
    assert response.status_code == 200
    assert len(revoke_events()) == 1
