"""Every path that ends a resident's sessions or grants tells the client (issue 13).

One table, one row per cut-off: each row drives the path the way an operator or a
resident does (web page, console, CLI), and the same assertion follows: the client,
which registered a back-channel logout URI, received a logout token for the
resident's session, delivered by the outbox and audited with the path's reason. All
of them go through ``idp.access.service`` (``revoke_grants``, ``narrow_grants``,
``end_sessions``), which queues the notices in the change's transaction.
"""

from __future__ import annotations

import pytest
from flask import session
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.access.sessions import load_session
from idp.extensions import db
from idp.interaction import flow
from tests import factories
from tests.helpers.admin import events
from tests.helpers.app import flush_outbox
from tests.helpers.end_access import PATHS
from tests.helpers.oauth import RelyingParty
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


@pytest.mark.parametrize(("end_access", "reason"), PATHS, ids=[p.__name__ for p, _ in PATHS])
def test_every_path_that_ends_access_sends_a_logout_token(client, rp, relying_party, cli,
                                                          end_access, reason):
    """Test that the path delivers the client a signed logout token for the session its
    ID token named (same sub, same sid), audited with the path's reason."""
    issued = tokens_for(client, rp, "openid name email offline_access")
    id_claims = jwt_claims(issued["id_token"])
    assert relying_party.tokens() == []
    end_access(client, rp, cli, issued)
    tokens = relying_party.tokens()
    assert tokens, f"{end_access.__name__}: no logout token"
    keys = KeySet.import_key_set(client.get("/jwks.json").json)
    for token in tokens:
        claims = jwt.decode(token, keys, algorithms=["RS256", "ES256"]).claims
        assert claims["aud"] == rp.client_id and claims["events"] == {EVENT: {}}
        assert (claims["sub"], claims["sid"]) == (id_claims["sub"], id_claims["sid"])
    deliveries = [e for e in events("oauth:backchannel_logout:delivery")
                  if e.data["reason"] == reason]
    assert deliveries and {e.data["result"] for e in deliveries} == {"delivered"}


def test_signing_a_browser_out_ends_its_session_through_the_one_way(app, client, rp,
                                                                    relying_party):
    """Test that ``flow.sign_out`` on a browser whose session is still live ends it through
    ``access.end_sessions``: the client receives a logout token for that session, audited
    with the caller's reason; a second call finds nothing left to end and tells nobody."""
    issued = tokens_for(client, rp, "openid")
    with client.session_transaction() as cookie:
        browser_sid = cookie["sid"]
    with app.test_request_context():
        session["sid"] = browser_sid
        flow.sign_out("logout")
        assert "sid" not in session
        db.session.commit()  # the request's unit of work; delivery follows its end
    (token,) = relying_party.tokens()
    assert jwt_claims(token)["sid"] == jwt_claims(issued["id_token"])["sid"]
    assert load_session(browser_sid) is None
    assert [e.data["reason"] for e in events("oauth:backchannel_logout:delivery")] == ["logout"]
    with app.test_request_context():
        session["sid"] = browser_sid
        flow.sign_out("logout")
        db.session.commit()
    flush_outbox()
    assert len(relying_party.tokens()) == 1
