"""OIDC Back-Channel Logout 1.0: logout tokens POSTed to a real HTTP server on 127.0.0.1.

The relying party is played by a small threaded HTTP server started in the
test; it records what it receives and answers with the status the test sets.
"""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.accounts.models import Resident
from idp.clients import service as clients
from idp.extensions import db
from idp.outbox.models import OutboxMessage
from tests import factories
from tests.helpers import end_access
from tests.helpers.accounts import post_form
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.app import flush_outbox
from tests.helpers.oauth import RelyingParty
from tests.helpers.oauth import ResidentBrowser
from tests.helpers.oauth import introspect
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import tokens_for

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
def relying_party():
    rp = RelyingParty()
    yield rp
    rp.close()


@pytest.fixture
def rp(app, relying_party):
    factories.resident()
    return factories.rp(backchannel_logout_uri=relying_party.uri)


def verified(client, token: str) -> tuple[dict, dict]:
    """Header and claims of a logout token, checked against our JWKS."""
    keys = KeySet.import_key_set(client.get("/jwks.json").json)
    decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
    return decoded.header, decoded.claims


def test_revoking_a_client_sends_a_logout_token_for_its_session(client, rp, relying_party):
    """Test that revoking from the console POSTs a signed logout token with the ID token's
    sub and sid, the event, and no nonce; the delivery is audited."""
    issued = tokens_for(client, rp, "openid email")
    id_claims = jwt_claims(issued["id_token"])
    assert id_claims["sid"]
    admin = enrolled_admin()
    browser = AdminBrowser(client, admin)
    browser.login()
    response = browser.form(f"/admin/clients/{rp.client_id}",
                            f"/admin/clients/{rp.client_id}/revoke", confirm=rp.client_id)
    assert response.status_code == 303
    assert len(relying_party.received) == 1
    received = relying_party.received[0]
    assert received["path"] == "/backchannel-logout"
    assert received["content_type"] == "application/x-www-form-urlencoded"
    header, claims = verified(client, relying_party.tokens()[0])
    assert header["typ"] == "logout+jwt"
    assert claims["iss"] == "http://localhost" and claims["aud"] == rp.client_id
    assert claims["events"] == {EVENT: {}}
    assert (claims["sub"], claims["sid"]) == (id_claims["sub"], id_claims["sid"])
    assert "nonce" not in claims and claims["jti"] and claims["exp"] > claims["iat"]
    (delivery,) = events("oauth:backchannel_logout:delivery")
    assert delivery.data == {"reason": "client_revoked", "session": True,
                             "result": "delivered", "status": 200}
    assert delivery.admin_id == admin.id and delivery.client_id == rp.client_id
    assert relying_party.tokens()[0] not in json.dumps(delivery.data)


def test_resident_logout_notifies_each_client_of_the_session(client, rp, relying_party):
    """Test that the resident's own sign-out tells the client the session ended."""
    issued = tokens_for(client, rp, "openid")
    home = client.get("/account")
    response = client.post("/logout", data={"csrf_token": factories.csrf(home.text),
                                            "confirm": "yes"})
    assert response.status_code == 200
    (token,) = relying_party.tokens()
    _, claims = verified(client, token)
    assert claims["sid"] == jwt_claims(issued["id_token"])["sid"]
    assert events("oauth:backchannel_logout:delivery")[0].data["reason"] == "logout"


def test_rp_initiated_logout_notifies_too(client, rp, relying_party):
    """Test that RP-initiated logout (id_token_hint) also sends the logout token."""
    issued = tokens_for(client, rp, "openid")
    client.get("/logout", query_string={"id_token_hint": issued["id_token"]})
    assert len(relying_party.tokens()) == 1


def test_sid_differs_per_company_for_one_browser_session(client, relying_party):
    """Test that two companies signed in by one browser session see different sids."""
    factories.resident()
    first = factories.rp(backchannel_logout_uri=relying_party.uri)
    second = factories.rp(factories.company("B社"), backchannel_logout_uri=relying_party.uri)
    browser = ResidentBrowser(client)
    sid_a = jwt_claims(tokens_for(client, first, "openid", browser=browser)["id_token"])["sid"]
    sid_b = jwt_claims(tokens_for(client, second, "openid", browser=browser)["id_token"])["sid"]
    assert sid_a != sid_b


def test_suspending_a_company_notifies_every_live_session(client, relying_party, cli):
    """Test that `idp companies suspend` tells the client about each resident's session."""
    factories.resident()
    factories.resident("taro@example.jp")
    rp = factories.rp(backchannel_logout_uri=relying_party.uri)
    tokens_for(client, rp, "openid")
    other = client.application.test_client()
    tokens_for(other, rp, "openid", browser=ResidentBrowser(other, "taro@example.jp"))
    result = cli("companies", "suspend", rp.company_id)
    assert result.exit_code == 0, result.output
    subs = {verified(client, t)[1]["sub"] for t in relying_party.tokens()}
    assert len(subs) == 2
    assert {e.data["reason"] for e in events("oauth:backchannel_logout:delivery")} == {
        "company_suspended"}


def test_failed_delivery_is_audited_and_changes_nothing_else(client, rp, relying_party):
    """Test that an RP answering 500 is recorded as failed; the revocation stands."""
    tokens_for(client, rp, "openid")
    relying_party.status = 500
    clients.revoke_client(rp.client_id, actor="test")
    db.session.commit()
    results = flush_outbox()
    db.session.commit()
    assert results == [{"client_id": rp.client_id, "result": "failed", "status": 500}]
    (delivery,) = events("oauth:backchannel_logout:delivery")
    assert delivery.data["result"] == "failed" and delivery.data["status"] == 500
    assert clients.get_client(rp.client_id).revoked_at is not None


def test_unreachable_endpoint_is_audited_as_failed(client, app):
    """Test that a refused connection is a failed delivery, not an error page."""
    factories.resident()
    rp = factories.rp(backchannel_logout_uri="http://127.0.0.1:9/closed")
    tokens_for(client, rp, "openid")
    clients.revoke_client(rp.client_id, actor="test")
    db.session.commit()
    (result,) = flush_outbox()
    db.session.commit()
    assert result["result"] == "failed" and result["error"] == "ConnectionError"


def test_nothing_is_sent_for_a_rolled_back_change(client, rp, relying_party):
    """Test that notices queued by a change that is rolled back are dropped."""
    tokens_for(client, rp, "openid")
    clients.revoke_client(rp.client_id, actor="test")
    db.session.rollback()
    assert flush_outbox() == []
    assert relying_party.received == []


def test_clients_without_a_uri_are_not_contacted(client, relying_party):
    """Test that a client without backchannel_logout_uri gets nothing and nothing is audited."""
    factories.resident()
    rp = factories.rp()
    tokens_for(client, rp, "openid")
    clients.revoke_client(rp.client_id, actor="test")
    db.session.commit()
    assert flush_outbox() == []
    assert events("oauth:backchannel_logout:delivery") == []


def test_backchannel_uri_must_be_https_or_loopback(app):
    """Test that the URI is validated like redirect URIs (no fragment, https)."""
    company_id = factories.company()
    for bad in ("http://rp.example.jp/logout", "https://rp.example.jp/logout#x", "ftp://x"):
        with pytest.raises(clients.ClientError):
            clients.register_client(company_id, "X", redirect_uris=[factories.REDIRECT_URI],
                                    backchannel_logout_uri=bad)
        db.session.rollback()


def test_discovery_advertises_backchannel_logout(client):
    """Test the discovery members of OIDC Back-Channel Logout 1.0 §2.1."""
    metadata = client.get("/.well-known/openid-configuration").json
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True
    assert "sid" in metadata["claims_supported"]


# ---- every path that ends sessions or grants tells the client (issue 12 item 14) -------

def delivered(reason: str) -> list:
    """The audited deliveries of logout tokens sent for ``reason``."""
    return [e for e in events("oauth:backchannel_logout:delivery") if e.data["reason"] == reason]


def test_password_change_tells_the_client_of_each_other_session(client, rp, relying_party):
    """Test that a password change ends the resident's other browser session and its
    client gets a logout token with that session's sid; this browser's session stays."""
    mine = jwt_claims(tokens_for(client, rp, "openid")["id_token"])
    other = client.application.test_client()
    theirs = jwt_claims(tokens_for(other, rp, "openid",
                                   browser=ResidentBrowser(other))["id_token"])
    response = post_form(client, "/account/password", {
        "current_password": factories.PASSWORD, "new_password": "new winter password",
        "new_password_confirm": "new winter password"})
    assert response.status_code == 303
    (token,) = relying_party.tokens()
    _, claims = verified(client, token)
    assert (claims["sub"], claims["sid"]) == (theirs["sub"], theirs["sid"])
    assert claims["sid"] != mine["sid"]
    (delivery,) = delivered("password_change")
    assert delivery.data["result"] == "delivered"


def test_password_reset_tells_every_client(client, rp, relying_party):
    """Test that a password reset by emailed link sends the client a logout token."""
    id_claims = jwt_claims(tokens_for(client, rp, "openid")["id_token"])
    end_access.password_reset(client, rp, cli=None, issued=None)
    tokens = relying_party.tokens()
    assert tokens, "no logout token"
    assert {verified(client, t)[1]["sid"] for t in tokens} == {id_claims["sid"]}
    assert {e.data["result"] for e in delivered("password_reset")} == {"delivered"}


def test_account_deletion_tells_the_client_and_keeps_no_resident_id(client, rp, relying_party):
    """Test that deleting the account sends a logout token with the company's sub, and
    neither the delivery's audit record nor the outbox keeps the resident's id."""
    id_claims = jwt_claims(tokens_for(client, rp, "openid")["id_token"])
    response = post_form(client, "/account/delete", {"password": factories.PASSWORD})
    assert response.status_code == 200
    tokens = relying_party.tokens()
    assert tokens, "no logout token"
    assert {verified(client, t)[1]["sub"] for t in tokens} == {id_claims["sub"]}
    deliveries = delivered("account_deleted")
    assert deliveries and all(e.resident_id is None and e.ip is None for e in deliveries)
    # The goodbye mail is an outbox row too (idp.mail): none of them keeps the resident's id.
    rows = db.session.execute(select(OutboxMessage.kind, OutboxMessage.resident_id)).all()
    assert [resident_id for _, resident_id in rows] == [None] * len(rows)
    assert [kind for kind, _ in rows].count("backchannel_logout") == len(tokens)


def test_declining_the_terms_tells_the_client(client, rp, relying_party):
    """Test that declining new terms signs the resident out and the client is told."""
    id_claims = jwt_claims(tokens_for(client, rp, "openid")["id_token"])
    end_access.terms_decline(client, rp, cli=None, issued=None)
    (token,) = relying_party.tokens()
    assert verified(client, token)[1]["sid"] == id_claims["sid"]
    assert delivered("terms_declined")[0].data["result"] == "delivered"


def test_admin_signing_a_resident_out_tells_the_client(client, rp, relying_party):
    """Test that the console's "sign out everywhere" ends the sessions, revokes the tokens,
    and sends the client a logout token, audited with the admin."""
    issued = tokens_for(client, rp, "openid offline_access")
    resident = db.session.scalar(select(Resident))
    admin = enrolled_admin()
    browser = AdminBrowser(client.application.test_client(), admin)
    browser.login()
    response = browser.form(f"/admin/proofing?q={resident.id}",
                            f"/admin/proofing/{resident.id}/sign-out")
    assert response.status_code == 303
    (token,) = relying_party.tokens()
    assert verified(client, token)[1]["sid"] == jwt_claims(issued["id_token"])["sid"]
    (delivery,) = delivered("admin")
    assert delivery.admin_id == admin.id and delivery.data["result"] == "delivered"
    (signed_out,) = events("resident:session:end_all")
    assert signed_out.data["sessions_ended"] == 1 and signed_out.data["tokens_revoked"] == 1
    assert introspect(client, rp, issued["access_token"]).json == {"active": False}


def test_cli_signing_a_resident_out_tells_the_client(client, rp, relying_party, cli):
    """Test that `idp users sign-out` sends the client a logout token."""
    tokens_for(client, rp, "openid")
    result = cli("users", "sign-out", "--email", "hanako@example.jp", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sessions_ended"] == 1
    assert len(relying_party.tokens()) == 1
    assert delivered("admin")[0].data["result"] == "delivered"


def test_withdrawing_consent_tells_that_client_only(client, relying_party):
    """Test that withdrawing consent for one service sends its client a logout token for
    the resident and nothing to the other service."""
    factories.resident()
    first = factories.rp(backchannel_logout_uri=relying_party.uri)
    second = factories.rp(factories.company("B社"), backchannel_logout_uri=relying_party.uri)
    browser = ResidentBrowser(client)
    tokens_for(client, first, "openid", browser=browser)
    tokens_for(client, second, "openid", browser=browser)
    response = post_form(client, "/account/consents", {"client_id": first.client_id, "confirm": "yes"})
    assert response.status_code == 303
    (token,) = relying_party.tokens()
    assert verified(client, token)[1]["aud"] == first.client_id
    assert delivered("consent_withdrawn")[0].client_id == first.client_id


def test_delivery_never_holds_the_database_while_the_client_calls_back(client, rp,
                                                                       relying_party):
    """Test that a client which calls /revoke while it receives its logout token (as
    mod_auth_openidc does) gets its answer, and the delivery is audited as delivered:
    nothing is posted while a transaction holds SQLite's write lock."""
    issued = tokens_for(client, rp, "openid offline_access")
    app = client.application
    answers = []

    def revoke_on_receive(_token):
        rp_client = FlaskClient(app, app.response_class)
        answers.append(rp_client.post("/revoke", data={"token": issued["refresh_token"]},
                                      auth=(rp.client_id, rp.client_secret)).status_code)

    relying_party.on_receive = revoke_on_receive
    response = client.get("/logout", query_string={"id_token_hint": issued["id_token"]})
    assert response.status_code == 200
    assert answers == [200]
    (delivery,) = delivered("logout")
    assert delivery.data["result"] == "delivered"
    assert introspect(client, rp, issued["access_token"]).json == {"active": False}
