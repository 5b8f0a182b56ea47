"""OIDC Back-Channel Logout 1.0: logout tokens POSTed to a real HTTP server on 127.0.0.1.

The relying party is played by a small threaded HTTP server started in the
test; it records what it receives and answers with the status the test sets.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.clients import service as clients
from idp.extensions import db
from tests import factories
from tests.conftest import flush_outbox
from tests.flows.admin_helpers import AdminBrowser
from tests.flows.admin_helpers import enrolled_admin
from tests.flows.admin_helpers import events
from tests.flows.helpers import ResidentBrowser
from tests.flows.helpers import jwt_claims
from tests.flows.helpers import tokens_for

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class RelyingParty:
    """A back-channel logout endpoint: records each POST, answers ``status``."""

    def __init__(self):
        self.received: list[dict] = []
        self.status = 200
        rp = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length).decode()
                rp.received.append({"path": self.path,
                                    "content_type": self.headers.get("Content-Type"),
                                    "form": parse_qs(body)})
                self.send_response(rp.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/backchannel-logout"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def tokens(self) -> list[str]:
        return [r["form"]["logout_token"][0] for r in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


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
    assert response.status_code in (200, 302)
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
