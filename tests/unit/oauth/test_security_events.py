"""The Security Event Token (RFC 8417) and its event members, without delivery."""

from __future__ import annotations

import json

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.access import security_events as events
from idp.clients.models import Client
from idp.extensions import db
from idp.keys import service as keys
from idp.oauth.security_events import refused
from idp.oauth.security_events import security_event_token
from tests import factories

SUBJECT = {"format": "iss_sub", "iss": "http://localhost", "sub": "pairwise-at-A"}


def claims(**overrides) -> dict:
    return {"aud": "mc_a", "jti": "jti-1", "iat": 1764740000, "sub_id": SUBJECT,
            "events": {events.SESSION_REVOKED: {"event_timestamp": 1764740000}}, **overrides}


@pytest.fixture
def rp_client(app):
    return db.session.get(Client, factories.rp().client_id)


def test_the_set_has_the_rfc_8417_claims_and_typ(app, rp_client):
    """Test that the SET carries iss, iat, jti, aud, events and sub_id, no sub/exp/txn, and
    typ secevent+jwt, and verifies with the published JWKS."""
    token = security_event_token(claims(aud=rp_client.id), rp_client, "http://localhost")
    decoded = jwt.decode(token, KeySet.import_key_set(keys.jwks_document()),
                         algorithms=["RS256", "ES256"])
    assert decoded.header["typ"] == "secevent+jwt"
    assert decoded.header["alg"] in ("RS256", "ES256") and decoded.header["kid"]
    assert decoded.claims == {"iss": "http://localhost", "iat": 1764740000, "jti": "jti-1",
                              "aud": rp_client.id, "sub_id": SUBJECT,
                              "events": {events.SESSION_REVOKED: {
                                  "event_timestamp": 1764740000}}}


def test_the_set_keeps_only_the_queued_claims(app, rp_client):
    """Test that a stray member of the stored payload (e.g. a resident id put there by
    mistake) is not signed into the SET."""
    token = security_event_token(claims(resident_id="r_secret", sub="other-company-sub"),
                                 rp_client, "http://localhost")
    body = json.dumps(jwt.decode(token, KeySet.import_key_set(keys.jwks_document()),
                                 algorithms=["RS256", "ES256"]).claims)
    assert "r_secret" not in body and "other-company-sub" not in body


@pytest.mark.parametrize(("reason", "entity"), [
    ("logout", "user"), ("account_deleted", "user"), ("admin", "admin"),
    ("company_suspended", "admin"), ("something_new", "system")])
def test_caep_members_say_who_initiated(reason, entity):
    """Test that CAEP events carry event_timestamp, initiating_entity and reason_admin."""
    members = events.event_members(events.SESSION_REVOKED, reason, 5, None)
    assert members["event_timestamp"] == 5 and members["initiating_entity"] == entity
    assert set(members["reason_admin"]) == {"en"}


def test_risc_and_our_members():
    """Test that RISC events carry only their own members, ours a timestamp and reason."""
    assert events.event_members(events.ACCOUNT_PURGED, "account_deleted", 5, None) == {}
    assert events.event_members(events.ACCOUNT_DISABLED, "x", 5, {"reason": "hijacking"}) == {
        "reason": "hijacking"}
    assert events.event_members(events.DATA_LINK_ENDED, "ended", 5, {"link": "L"}) == {
        "event_timestamp": 5, "reason": "ended", "link": "L"}


def test_only_a_400_is_a_refusal_of_the_set():
    """Test that RFC 8935 §2.3's 400 is permanent and other failures are not."""
    assert refused({"status": 400}) is True
    for outcome in ({"status": 401}, {"status": 404}, {"status": 500}, {"error": "timeout"}):
        assert refused(outcome) is False


def test_event_type_names_are_exactly_these():
    """Test the event type URIs other code and member companies rely on."""
    assert events.EVENT_TYPES == (
        "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
        "https://schemas.openid.net/secevent/risc/event-type/account-purged",
        "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
        "urn:machi-id:secevent:consent-withdrawn",
        "urn:machi-id:secevent:data-link-ended",
        "urn:machi-id:secevent:registered-data-disputed")
