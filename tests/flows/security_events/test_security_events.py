"""Security events (RFC 8417 SETs pushed per RFC 8935) to a real receiver on 127.0.0.1.

The company's receiver is a small threaded HTTP server started in the test
(``tests.helpers.oauth.EventReceiver``); it records each POST as it came and
answers with the status (and RFC 8935 error body) the test sets. Deliveries run
inline at the end of each request (TEST_SETTINGS), or with ``flush_outbox()``.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from freezegun import freeze_time
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.access import security_events as events_
from idp.access import service as access
from idp.access.models import PairwiseSubject
from idp.accounts.models import Resident
from idp.clients import service as clients
from idp.consent import service as consent
from idp.db import utcnow
from idp.extensions import db
from idp.outbox.models import OutboxMessage
from tests import factories
from tests.helpers.accounts import post_form
from tests.helpers.admin import events
from tests.helpers.app import flush_outbox
from tests.helpers.end_access import PATHS
from tests.helpers.oauth import EventReceiver
from tests.helpers.oauth import RelyingParty
from tests.helpers.oauth import ResidentBrowser
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import tokens_for

TAG = "security_event:delivery"


@pytest.fixture
def receiver():
    server = EventReceiver()
    yield server
    server.close()


@pytest.fixture
def other_receiver():
    server = EventReceiver()
    yield server
    server.close()


@pytest.fixture
def rp(app, receiver):
    factories.resident()
    return factories.rp(event_receiver_uri=receiver.uri)


def resident_id() -> str:
    db.session.rollback()
    return db.session.scalar(select(Resident.id))


def decoded(client, token: str) -> tuple[dict, dict]:
    """Header and claims of a SET, checked against our published JWKS."""
    keys = KeySet.import_key_set(client.get("/jwks.json").json)
    token_ = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
    return token_.header, token_.claims


def sets(client, receiver) -> dict[str, dict]:
    """The received SETs by event type (each SET carries exactly one event)."""
    found = {}
    for token in receiver.tokens():
        _, claims = decoded(client, token)
        (event_type,) = claims["events"]
        assert event_type not in found, f"two {event_type} events"
        found[event_type] = claims
    return found


def message_rows() -> list[OutboxMessage]:
    db.session.rollback()
    return list(db.session.scalars(select(OutboxMessage)
                                   .where(OutboxMessage.kind == "security_event")
                                   .order_by(OutboxMessage.id)))


def test_consent_withdrawal_sends_consent_withdrawn_and_session_revoked(client, rp, receiver):
    """Test that withdrawing consent pushes the client two signed SETs (consent-withdrawn
    and CAEP session-revoked) as RFC 8935 asks, about the sub its ID token named, and that
    each delivery is audited without the token."""
    issued = tokens_for(client, rp, "openid name email")
    sub = jwt_claims(issued["id_token"])["sub"]
    rid = resident_id()
    response = post_form(client, "/account/consents", {"client_id": rp.client_id, "confirm": "yes"})
    assert response.status_code == 303
    assert len(receiver.received) == 2
    for request in receiver.received:
        assert request["path"] == "/events"
        assert request["content_type"] == "application/secevent+jwt"
        assert request["accept"] == "application/json"
        header, claims = decoded(client, request["body"])
        assert header["typ"] == "secevent+jwt" and header["kid"]
        assert claims["iss"] == "http://localhost" and claims["aud"] == rp.client_id
        assert claims["sub_id"] == {"format": "iss_sub", "iss": "http://localhost", "sub": sub}
        assert claims["jti"] and isinstance(claims["iat"], int)
        assert not {"sub", "exp", "txn"} & set(claims)
        assert rid not in json.dumps(claims)
    received = sets(client, receiver)
    withdrawn = received[events_.CONSENT_WITHDRAWN]["events"][events_.CONSENT_WITHDRAWN]
    assert withdrawn["reason"] == "consent_withdrawn"
    assert isinstance(withdrawn["event_timestamp"], int)
    revoked = received[events_.SESSION_REVOKED]["events"][events_.SESSION_REVOKED]
    assert revoked["initiating_entity"] == "user"
    assert revoked["reason_admin"] == {"en": "The resident withdrew consent for this service."}
    deliveries = events(TAG)
    assert {d.data["event"] for d in deliveries} == {events_.CONSENT_WITHDRAWN,
                                                     events_.SESSION_REVOKED}
    for delivery in deliveries:
        assert delivery.data["result"] == "delivered" and delivery.data["status"] == 202
        assert delivery.data["reason"] == "consent_withdrawn"
        assert delivery.client_id == rp.client_id
        assert not any(token in json.dumps(delivery.data) for token in receiver.tokens())


def test_stopping_one_item_sends_consent_withdrawn_naming_it(client, rp, receiver):
    """Test that stopping one item (the rest kept) pushes consent-withdrawn with the item in
    ``scopes`` and ``reason`` consent_narrowed, and session-revoked for the token it cut."""
    tokens_for(client, rp, "openid name email")
    response = post_form(client, "/account/consents", {
        "client_id": rp.client_id, "item": "email", "confirm": "yes"},
        action="/account/consents/item")
    assert response.status_code == 303
    received = sets(client, receiver)
    withdrawn = received[events_.CONSENT_WITHDRAWN]["events"][events_.CONSENT_WITHDRAWN]
    assert withdrawn["reason"] == "consent_narrowed" and withdrawn["scopes"] == ["email"]
    revoked = received[events_.SESSION_REVOKED]["events"][events_.SESSION_REVOKED]
    assert revoked["initiating_entity"] == "user"
    assert revoked["reason_admin"] == {
        "en": "The resident stopped sharing some items with this service."}


def test_consent_withdrawn_is_sent_even_without_a_live_session(client, rp, receiver):
    """Test that a withdrawal tells the client even when none of its sessions or tokens
    is live (no session-revoked then): the company may still hold what the resident
    shared."""
    tokens_for(client, rp, "openid")
    rid = resident_id()
    access.end_sessions(rid, "test", notify=False)
    access.revoke_grants(resident=rid, reason="test", notify=False)
    consent.withdraw(rid, rp.client_id)
    flush_outbox()
    assert set(sets(client, receiver)) == {events_.CONSENT_WITHDRAWN}


def test_signing_out_sends_session_revoked(client, rp, receiver):
    """Test that the resident's own sign-out sends CAEP session-revoked, initiated by the
    user, and nothing else."""
    tokens_for(client, rp, "openid")
    home = client.get("/account")
    response = client.post("/logout", data={"csrf_token": factories.csrf(home.text),
                                            "confirm": "yes"})
    assert response.status_code == 200
    (event_type,) = sets(client, receiver)
    assert event_type == events_.SESSION_REVOKED
    claims = sets(client, receiver)[event_type]
    assert claims["events"][event_type]["initiating_entity"] == "user"
    assert claims["events"][event_type]["reason_admin"] == {"en": "The resident signed out."}


def test_an_admin_sign_out_is_initiated_by_an_admin(client, rp, receiver, cli):
    """Test that `idp users sign-out` sends one session-revoked (the sessions end and the
    grants are revoked in one change: said once), with initiating_entity admin."""
    tokens_for(client, rp, "openid offline_access")
    result = cli("users", "sign-out", "--email", "hanako@example.jp", "--json")
    assert result.exit_code == 0, result.output
    assert len(receiver.received) == 1
    claims = sets(client, receiver)[events_.SESSION_REVOKED]
    assert claims["events"][events_.SESSION_REVOKED]["initiating_entity"] == "admin"


def test_account_deletion_tells_every_company_that_knew_the_resident(
        client, receiver, other_receiver):
    """Test that deleting the account sends RISC account-purged to every company given the
    resident's pairwise sub, each with its own sub and nothing of the other's, and nothing
    to a company that never knew the resident; the subjects go after."""
    factories.resident()
    first = factories.rp(event_receiver_uri=receiver.uri)
    second = factories.rp(factories.company("B社"), event_receiver_uri=other_receiver.uri)
    stranger_receiver = EventReceiver()
    try:
        factories.rp(factories.company("C社"), event_receiver_uri=stranger_receiver.uri)
        browser = ResidentBrowser(client)
        sub_a = jwt_claims(tokens_for(client, first, "openid",
                                      browser=browser)["id_token"])["sub"]
        sub_b = jwt_claims(tokens_for(client, second, "openid",
                                      browser=browser)["id_token"])["sub"]
        rid = resident_id()
        response = post_form(client, "/account/delete", {"password": factories.PASSWORD})
        assert response.status_code == 200
        assert stranger_receiver.received == []
    finally:
        stranger_receiver.close()
    for rp, server, sub, other_sub in ((first, receiver, sub_a, sub_b),
                                       (second, other_receiver, sub_b, sub_a)):
        received = sets(client, server)
        assert set(received) == {events_.ACCOUNT_PURGED, events_.SESSION_REVOKED}
        purged = received[events_.ACCOUNT_PURGED]
        assert purged["aud"] == rp.client_id and purged["sub_id"]["sub"] == sub
        assert purged["events"] == {events_.ACCOUNT_PURGED: {}}
        for token in server.tokens():
            body = json.dumps(decoded(client, token)[1])
            assert other_sub not in body and rid not in body
    db.session.rollback()
    assert db.session.scalars(select(PairwiseSubject)).all() == []
    assert all(row.resident_id is None for row in message_rows())
    purges = [e for e in events(TAG) if e.data["event"] == events_.ACCOUNT_PURGED]
    assert {e.client_id for e in purges} == {first.client_id, second.client_id}
    assert {e.data["reason"] for e in purges} == {"account_deleted"}


def test_a_client_without_a_receiver_is_sent_nothing(client, relying_party_server):
    """Test that a client with no event_receiver_uri (a back-channel logout URI only) gets
    its logout token and no security event is queued."""
    factories.resident()
    rp = factories.rp(backchannel_logout_uri=relying_party_server.uri)
    tokens_for(client, rp, "openid")
    response = post_form(client, "/account/consents", {"client_id": rp.client_id, "confirm": "yes"})
    assert response.status_code == 303
    assert message_rows() == []
    assert len(relying_party_server.tokens()) == 1
    assert events_.queue(rp.client_id, resident_id(), events_.CONSENT_WITHDRAWN,
                         reason="consent_withdrawn") is False


@pytest.fixture
def relying_party_server():
    server = RelyingParty()
    yield server
    server.close()


def test_queue_tells_only_an_active_client(client, rp, receiver):
    """Test that queue() returns False for a suspended company's client, an unknown
    client, and True (one message) for an active one with a receiver."""
    rid = resident_id()
    assert events_.queue("mc_nobody", rid, events_.DATA_LINK_ENDED, reason="x") is False
    assert events_.queue(rp.client_id, rid, events_.DATA_LINK_ENDED, {"link": "L1"},
                         reason="data_link_ended") is True
    clients.suspend_company(rp.company_id, actor="test")
    assert events_.queue(rp.client_id, rid, events_.DATA_LINK_ENDED, reason="x") is False
    db.session.commit()
    (row,) = message_rows()
    assert row.payload["events"] == {events_.DATA_LINK_ENDED: {
        "event_timestamp": row.payload["iat"], "reason": "data_link_ended", "link": "L1"}}
    assert rid not in json.dumps(row.payload)


def test_queue_refuses_a_detail_naming_the_resident_or_an_unknown_type(client, rp):
    """Test that an event can never carry the resident's id, nor an unknown event type."""
    rid = resident_id()
    with pytest.raises(ValueError):
        events_.queue(rp.client_id, rid, events_.DATA_LINK_ENDED, {"who": rid}, reason="x")
    with pytest.raises(ValueError):
        events_.queue(rp.client_id, rid, "urn:example:other", reason="x")


def test_the_same_event_waiting_is_queued_once(client, rp):
    """Test that an identical event about the same subject still waiting is not queued
    again (a change that ends the sessions and revokes the grants says it once)."""
    rid = resident_id()
    assert events_.queue(rp.client_id, rid, events_.REGISTERED_DATA_DISPUTED,
                         {"items": ["address"]}, reason="disputed") is True
    assert events_.queue(rp.client_id, rid, events_.REGISTERED_DATA_DISPUTED,
                         {"items": ["address"]}, reason="disputed") is False
    assert events_.queue(rp.client_id, rid, events_.REGISTERED_DATA_DISPUTED,
                         {"items": ["name"]}, reason="disputed") is True


def test_a_400_from_the_receiver_is_a_dead_letter_at_once(client, rp, receiver):
    """Test that RFC 8935 §2.3's refusal (400 with err) is not retried; its err code is
    kept, the receiver's description is not."""
    receiver.status = 400
    receiver.body = {"err": "invalid_audience", "description": "not ours: secret-ish text"}
    events_.queue(rp.client_id, resident_id(), events_.DATA_LINK_ENDED, reason="ended")
    assert flush_outbox() == [{"client_id": rp.client_id, "result": "failed", "status": 400,
                               "err": "invalid_audience"}]
    (row,) = message_rows()
    assert (row.status, row.attempts, row.last_error) == ("dead", 1, "HTTP 400 invalid_audience")
    (delivery,) = events(TAG)
    assert delivery.data["dead"] is True and delivery.data["err"] == "invalid_audience"
    assert "secret-ish" not in json.dumps(delivery.data)


@pytest.mark.parametrize("status", [500, 503, 404, 401])
def test_other_failures_are_retried_with_backoff_as_the_same_set(client, rp, receiver, status):
    """Test that a 5xx (or a 401/404 while the receiver is being fixed) is retried after the
    outbox's backoff, and the retry is the same SET (same jti, iat and event)."""
    receiver.status = status
    start = utcnow()
    with freeze_time(start) as clock:
        events_.queue(rp.client_id, resident_id(), events_.CONSENT_WITHDRAWN,
                      reason="consent_withdrawn")
        assert flush_outbox()[0]["result"] == "failed"
        (row,) = message_rows()
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, f"HTTP {status}")
        assert row.next_attempt_at == start + dt.timedelta(seconds=30)
        receiver.status = 202
        clock.tick(29)
        assert flush_outbox() == []
        clock.tick(2)
        assert flush_outbox()[0] == {"client_id": rp.client_id, "result": "delivered",
                                     "status": 202}
    first, second = (decoded(client, t)[1] for t in receiver.tokens())
    assert first == second
    (row,) = message_rows()
    assert (row.status, row.payload) == ("delivered", {})
    failed, ok = events(TAG)
    assert failed.data["attempt"] == 1 and "retry_at" in failed.data
    assert ok.data["result"] == "delivered"


def test_logout_tokens_are_unchanged_for_a_client_with_both(client, receiver,
                                                            relying_party_server):
    """Test that a client with both URIs gets its logout token as before, and the SET."""
    factories.resident()
    rp = factories.rp(backchannel_logout_uri=relying_party_server.uri,
                      event_receiver_uri=receiver.uri)
    issued = tokens_for(client, rp, "openid")
    client.get("/logout", query_string={"id_token_hint": issued["id_token"]})
    (logout_token,) = relying_party_server.tokens()
    claims = jwt_claims(logout_token)
    assert claims["sid"] == jwt_claims(issued["id_token"])["sid"]
    assert set(sets(client, receiver)) == {events_.SESSION_REVOKED}


@pytest.mark.parametrize(("end_access", "reason"), PATHS, ids=[p.__name__ for p, _ in PATHS])
def test_every_path_that_ends_access_sends_session_revoked(client, rp, receiver, cli,
                                                          end_access, reason):
    """Test that each cut-off of tests/flows/logout/test_end_access_paths.py also pushes
    the client (which registered only an event receiver) a CAEP session-revoked about the
    sub its ID token named, audited with the path's reason."""
    issued = tokens_for(client, rp, "openid name email offline_access")
    sub = jwt_claims(issued["id_token"])["sub"]
    end_access(client, rp, cli, issued)
    received = sets(client, receiver)
    assert events_.SESSION_REVOKED in received, f"{end_access.__name__}: no session-revoked"
    claims = received[events_.SESSION_REVOKED]
    assert claims["aud"] == rp.client_id and claims["sub_id"]["sub"] == sub
    members = claims["events"][events_.SESSION_REVOKED]
    assert members["reason_admin"] == {"en": events_.REASONS[reason]}
    assert members["initiating_entity"] == events_.initiating_entity(reason)
    deliveries = [e for e in events(TAG) if e.data["event"] == events_.SESSION_REVOKED]
    assert {(e.data["reason"], e.data["result"]) for e in deliveries} == {(reason, "delivered")}
