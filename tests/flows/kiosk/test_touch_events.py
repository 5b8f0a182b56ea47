"""POST /api/touch-events: strict validation, all-or-nothing, idempotent, consented only."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func
from sqlalchemy import select

from idp.accounts.models import Resident
from idp.clients import service as clients
from idp.consent import service as consent_service
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent
from tests import factories
from tests.helpers.device import approve
from tests.helpers.device import authorize
from tests.helpers.device import poll


@pytest.fixture
def kiosk(app):
    factories.resident()
    company = factories.company("C社")
    client, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条西4丁目 交差点広場")
    kiosk = factories.RP(client.id, secret, company, redirect_uri="")
    db.session.commit()
    return kiosk


@pytest.fixture
def anonymous_token(client, kiosk):
    response = client.post("/token", data={"grant_type": "client_credentials",
                                           "scope": "touch_events"},
                           auth=(kiosk.client_id, kiosk.client_secret))
    return response.json["access_token"]


@pytest.fixture
def resident_token(client, kiosk):
    body = authorize(client, kiosk)
    approve(client, body["user_code"])
    return poll(client, kiosk, body["device_code"]).json["access_token"]


def now_iso(seconds_ago=0):
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)).isoformat()


def post(client, token, payload, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/touch-events", json=payload, headers=headers, **kwargs)


def stored():
    return db.session.scalar(select(func.count()).select_from(TouchEvent))


def test_resident_events_are_logged_against_the_resident(client, resident_token):
    """Test that a device-flow token logs events with the resident who approved."""
    response = post(client, resident_token, {"events": [
        {"occurred_at": now_iso(), "target": "map-north", "event_id": "e1"},
        {"occurred_at": now_iso(), "target": "events-today", "event_id": "e2"}]})
    assert response.status_code == 201 and response.json == {"stored": 2, "duplicates": 0}
    resident = db.session.scalar(select(Resident))
    rows = db.session.scalars(select(TouchEvent)).all()
    assert {r.resident_id for r in rows} == {resident.id}


def test_client_credentials_events_are_anonymous(client, anonymous_token, kiosk):
    """Test that a kiosk's own token logs passer-by touches without a resident."""
    response = post(client, anonymous_token, {"events": [{"occurred_at": now_iso(),
                                                          "target": "weather"}]})
    assert response.status_code == 201
    row = db.session.scalar(select(TouchEvent))
    assert row.resident_id is None and row.client_id == kiosk.client_id


def test_retried_batch_never_double_counts(client, anonymous_token):
    """Test that resending event_ids stores nothing twice."""
    batch = {"events": [{"occurred_at": now_iso(), "target": "a", "event_id": "x1"},
                        {"occurred_at": now_iso(), "target": "b", "event_id": "x2"}]}
    assert post(client, anonymous_token, batch).json == {"stored": 2, "duplicates": 0}
    assert post(client, anonymous_token, batch).json == {"stored": 0, "duplicates": 2}
    assert stored() == 2


def test_kiosk_last_seen_is_updated(client, anonymous_token, kiosk):
    """Test that posting events records when the kiosk was last seen."""
    post(client, anonymous_token, {"events": [{"occurred_at": now_iso(), "target": "a"}]})
    assert db.session.get(Kiosk, kiosk.client_id).last_seen_at is not None


def test_without_token_is_401(client):
    """Test that no bearer token gets 401 with WWW-Authenticate."""
    response = post(client, None, {"events": []})
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_invalid_token_is_401(client):
    """Test that an unknown token gets 401 invalid_token."""
    response = post(client, "nope", {"events": []})
    assert response.status_code == 401 and response.json["error"] == "invalid_token"


def test_token_without_scope_is_403(app, client):
    """Test that a token without touch_events gets 403 insufficient_scope."""
    factories.resident()
    rp = factories.rp()
    token = factories.tokens(client, rp, scope="openid email")["access_token"]
    response = post(client, token, {"events": [{"occurred_at": now_iso(), "target": "a"}]})
    assert response.status_code == 403 and response.json["error"] == "insufficient_scope"


def test_revoked_kiosk_token_is_401(client, anonymous_token, kiosk):
    """Test that revoking the kiosk cuts its tokens off at the API at once."""
    clients.revoke_client(kiosk.client_id)
    db.session.commit()
    assert post(client, anonymous_token, {"events": [{"occurred_at": now_iso(),
                                                      "target": "a"}]}).status_code == 401


def test_withdrawn_consent_stops_resident_logging(client, resident_token, kiosk):
    """Test that after the resident withdraws, the kiosk's token is refused."""
    resident = db.session.scalar(select(Resident))
    consent_service.withdraw(resident.id, kiosk.client_id)
    db.session.commit()
    assert post(client, resident_token, {"events": [{"occurred_at": now_iso(),
                                                     "target": "a"}]}).status_code == 401


@pytest.mark.parametrize(("payload", "field"), [
    ([], ""),
    ({"events": "no"}, "events"),
    ({"events": []}, "events"),
    ({"events": [1]}, "events[0]"),
    ({"events": [{"target": "a"}]}, "events[0].occurred_at"),
    ({"events": [{"occurred_at": "yesterday", "target": "a"}]}, "events[0].occurred_at"),
    ({"events": [{"occurred_at": "2026-11-22T10:00:00", "target": "a"}]},
     "events[0].occurred_at"),
    ({"events": [{"occurred_at": 1700000000, "target": "a"}]}, "events[0].occurred_at"),
    ({"events": [{"occurred_at": "0001-01-01T00:00:00+14:00", "target": "a"}]},
     "events[0].occurred_at"),
    ({"events": [{"occurred_at": "FUTURE", "target": "a"}]}, "events[0].occurred_at"),
    ({"events": [{"occurred_at": "OLD", "target": "a"}]}, "events[0].occurred_at"),
    ({"events": [{"occurred_at": "NOW", "target": ""}]}, "events[0].target"),
    ({"events": [{"occurred_at": "NOW"}]}, "events[0].target"),
    ({"events": [{"occurred_at": "NOW", "target": "x" * 201}]}, "events[0].target"),
    ({"events": [{"occurred_at": "NOW", "target": 5}]}, "events[0].target"),
    ({"events": [{"occurred_at": "NOW", "target": "a\nb"}]}, "events[0].target"),
    ({"events": [{"occurred_at": "NOW", "target": "a", "event_id": 7}]}, "events[0].event_id"),
    ({"events": [{"occurred_at": "NOW", "target": "a", "colour": "red"}]}, "events[0].colour"),
    ({"events": [{"occurred_at": "NOW", "target": "a", "event_id": "d"},
                 {"occurred_at": "NOW", "target": "b", "event_id": "d"}]}, "events[1].event_id"),
    ({"events": [], "extra": 1}, "extra"),
])
def test_bad_batches_are_400_naming_the_field_and_store_nothing(client, anonymous_token,
                                                                 payload, field):
    """Test that each malformed batch is refused whole, naming the bad field."""
    def fill(value):
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        placeholders = {"NOW": now_iso(), "FUTURE": now_iso(-3600), "OLD": now_iso(8 * 86400)}
        return placeholders.get(value, value) if isinstance(value, str) else value

    response = post(client, anonymous_token, fill(payload))
    assert response.status_code == 400, response.text
    assert response.json["error"] == "invalid_request"
    assert response.json["field"] == field
    assert stored() == 0


def test_one_bad_event_rejects_the_whole_batch(client, anonymous_token):
    """Test that good events before a bad one are not stored either."""
    events = [{"occurred_at": now_iso(), "target": "ok", "event_id": f"g{i}"} for i in range(5)]
    events.append({"occurred_at": "not a time", "target": "bad"})
    response = post(client, anonymous_token, {"events": events})
    assert response.status_code == 400 and response.json["field"] == "events[5].occurred_at"
    assert stored() == 0


def test_oversized_batch_is_400(client, anonymous_token):
    """Test that more than 1,000 events in one request are refused."""
    events = [{"occurred_at": now_iso(), "target": "a"}] * 1001
    response = post(client, anonymous_token, {"events": events})
    assert response.status_code == 400 and response.json["field"] == "events"
    assert stored() == 0


def test_full_batch_of_1000_is_accepted(client, anonymous_token):
    """Test that exactly 1,000 events are accepted in one request."""
    events = [{"occurred_at": now_iso(), "target": "a", "event_id": f"id-{i}"}
              for i in range(1000)]
    assert post(client, anonymous_token, {"events": events}).json["stored"] == 1000


def test_non_json_body_is_400(client, anonymous_token):
    """Test that a body that is not JSON gets a clear 400."""
    response = client.post("/api/touch-events", data="events=1",
                           headers={"Authorization": f"Bearer {anonymous_token}"})
    assert response.status_code == 400 and response.json["error"] == "invalid_request"


def test_events_for_resident_lists_kiosk_and_location(client, resident_token):
    """Test that a resident's events can be listed with kiosk and location, newest first."""
    # A resident's touches come after the token's grant (a second later is still "new").
    post(client, resident_token, {"events": [
        {"occurred_at": now_iso(), "target": "old"},
        {"occurred_at": now_iso(-1), "target": "new"}]})
    resident = db.session.scalar(select(Resident))
    listed = kiosks.events_for_resident(resident.id)
    assert [e["target"] for e in listed] == ["new", "old"]
    assert listed[0]["location"] == "北2条西4丁目 交差点広場"
    assert listed[0]["company"] == "C社"
