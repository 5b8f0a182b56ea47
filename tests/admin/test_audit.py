"""The audit trail: what a sign-in writes, what it never writes, and that it is append-only."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from idp.audit.models import AppendOnlyError
from idp.audit.models import AuditEvent
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.extensions import db
from tests import factories
from tests.helpers.oauth import redeem

FLOW_TAGS = ["resident:login:success", "consent:grant", "oauth:code:issue", "oauth:token:issue",
             "oauth:claims:release"]
BROWSER_IP = "203.0.113.7"
BROWSER_UA = "Mozilla/5.0 (Linux; Android 14) MachiTest/1.0"
RP_IP = "198.51.100.20"
RP_UA = "rp-backend/2.0"
TYPED_PASSWORD = "Wr0ng-Passw0rd-Typed-By-Hand"


def events(*tags: str) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if tags:
        query = query.where(AuditEvent.tag.in_(tags))
    return list(db.session.scalars(query))


def as_text(event: AuditEvent) -> str:
    """Every column of the row, as one string to search."""
    values = {c.name: getattr(event, c.key) for c in AuditEvent.__mapper__.columns}
    return json.dumps(values, default=str, ensure_ascii=False).lower()


def full_flow(client, rp, scope="openid name email gender", consent_scopes=("openid", "email")):
    """Sign in from a browser, consent to part of the request, and redeem the code from the RP."""
    client.environ_base.update(REMOTE_ADDR=BROWSER_IP, HTTP_USER_AGENT=BROWSER_UA)
    verifier, challenge = factories.pkce_pair()
    result = factories.Browser(client).code_flow(
        rp, scope=scope, consent_scopes=list(consent_scopes), code_challenge=challenge,
        code_challenge_method="S256")
    client.environ_base.update(REMOTE_ADDR=RP_IP, HTTP_USER_AGENT=RP_UA)
    response = redeem(client, rp, result["code"], verifier)
    assert response.status_code == 200, response.text
    return response.json


def test_code_flow_writes_events_in_order(client):
    """Test that a full code flow writes login, consent, code, token and claims release, in order."""
    rp = factories.rp()
    factories.resident()
    full_flow(client, rp)
    assert [e.tag for e in events(*FLOW_TAGS)] == FLOW_TAGS


def test_code_flow_events_name_resident_client_and_company(client):
    """Test that the flow's events after sign-in carry the resident, client and company ids."""
    rp = factories.rp()
    resident = factories.resident()
    full_flow(client, rp)
    login, *rest = events(*FLOW_TAGS)
    assert login.resident_id == resident.id
    for event in rest:
        assert (event.resident_id, event.client_id, event.company_id) == (
            resident.id, rp.client_id, rp.company_id), event.tag


def test_claims_release_lists_consented_claims(client):
    """Test that the ID token's claims release names the consented claims only, on channel id_token."""
    rp = factories.rp()
    factories.resident()
    full_flow(client, rp, consent_scopes=("openid", "email"))
    (release,) = events("oauth:claims:release")
    assert release.data["channel"] == "id_token"
    assert release.data["claims"] == ["email", "email_verified"]
    assert release.company_id == rp.company_id


def test_consent_grant_records_granted_and_declined(client):
    """Test that consent:grant records the granted and the declined scopes."""
    rp = factories.rp()
    factories.resident()
    full_flow(client, rp, consent_scopes=("openid", "email"))
    (grant,) = events("consent:grant")
    assert grant.data["scopes"] == ["openid", "email"]
    assert sorted(grant.data["declined"]) == ["gender", "name"]


def test_failed_login_with_wrong_password_stores_no_secret(client):
    """Test that a wrong password writes resident:login:failure without the typed password or email."""
    resident = factories.resident()
    before = {e.id for e in events()}
    page = client.get("/login")
    response = client.post("/login", data={"email": "Hanako@Example.jp", "password": TYPED_PASSWORD,
                                           "csrf_token": factories.csrf(page.text)})
    assert response.status_code == 401
    written = [e for e in events() if e.id not in before]
    assert [e.tag for e in written] == ["resident:login:failure"]
    assert written[0].resident_id == resident.id
    assert written[0].data["reason"] == "bad_password"
    for event in events():
        text = as_text(event)
        assert TYPED_PASSWORD.lower() not in text
        assert factories.PASSWORD.lower() not in text
        assert "hanako@example.jp" not in text


def test_failed_login_with_unknown_email_stores_no_email(client):
    """Test that an unknown email writes resident:login:failure without the typed email or password."""
    factories.resident()
    page = client.get("/login")
    client.post("/login", data={"email": "nobody.here@example.jp", "password": TYPED_PASSWORD,
                                "csrf_token": factories.csrf(page.text)})
    (failure,) = events("resident:login:failure")
    assert failure.resident_id is None
    assert failure.data["reason"] == "unknown_account"
    for event in events():
        text = as_text(event)
        assert "nobody.here" not in text
        assert TYPED_PASSWORD.lower() not in text


def test_successful_login_stores_no_password(client):
    """Test that a successful sign-in leaves the password out of every audit row."""
    rp = factories.rp()
    factories.resident()
    full_flow(client, rp)
    for event in events():
        assert factories.PASSWORD.lower() not in as_text(event)


def stored(event: AuditEvent) -> AuditEvent:
    """Commit ``event`` and load it as the database holds it (record() keeps no ORM row):
    the newest entry."""
    db.session.commit()
    stored = db.session.scalar(db.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert (stored.tag, stored.data) == (event.tag, event.data)
    return stored


def test_orm_refuses_to_update_an_event(app):
    """Test that changing a stored AuditEvent raises AppendOnlyError on flush."""
    event = stored(record(AuditTag.COMPANY_CREATE, company_id="co_TEST", name="A社"))
    event.tag = "company:delete"
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(AuditEvent, event.id).tag == "company:create"


def test_orm_refuses_to_update_event_data(app):
    """Test that replacing a stored AuditEvent's data raises AppendOnlyError on flush."""
    event = stored(record(AuditTag.COMPANY_CREATE, company_id="co_TEST", name="A社"))
    event.data = {"name": "B社"}
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(AuditEvent, event.id).data == {"name": "A社"}


def test_orm_refuses_to_delete_an_event(app):
    """Test that deleting a stored AuditEvent raises AppendOnlyError on flush."""
    event = stored(record(AuditTag.COMPANY_CREATE, company_id="co_TEST", name="A社"))
    event_id = event.id
    db.session.delete(event)
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(AuditEvent, event_id) is not None


def test_rows_carry_ip_and_user_agent_of_their_request(client):
    """Test that each event carries the ip and user agent of the request that wrote it."""
    rp = factories.rp()
    factories.resident()
    full_flow(client, rp)
    by_tag = {e.tag: e for e in events(*FLOW_TAGS)}
    for tag in ("resident:login:success", "consent:grant", "oauth:code:issue"):
        assert (by_tag[tag].ip, by_tag[tag].user_agent) == (BROWSER_IP, BROWSER_UA), tag
    for tag in ("oauth:token:issue", "oauth:claims:release"):
        assert (by_tag[tag].ip, by_tag[tag].user_agent) == (RP_IP, RP_UA), tag


def test_failed_login_carries_ip_and_user_agent(client):
    """Test that a failed sign-in records the browser's ip and user agent."""
    factories.resident()
    client.environ_base.update(REMOTE_ADDR="2001:db8::1", HTTP_USER_AGENT=BROWSER_UA)
    page = client.get("/login")
    client.post("/login", data={"email": "hanako@example.jp", "password": TYPED_PASSWORD,
                                "csrf_token": factories.csrf(page.text)})
    (failure,) = events("resident:login:failure")
    assert (failure.ip, failure.user_agent) == ("2001:db8::1", BROWSER_UA)


def test_long_user_agent_is_truncated(client):
    """Test that an overlong user agent is stored cut to 300 characters, not refused."""
    factories.resident()
    client.environ_base.update(HTTP_USER_AGENT="A" * 1000)
    page = client.get("/login")
    response = client.post("/login", data={"email": "hanako@example.jp",
                                           "password": factories.PASSWORD,
                                           "csrf_token": factories.csrf(page.text)})
    assert response.status_code == 302
    (login,) = events("resident:login:success")
    assert login.user_agent == "A" * 300


def test_events_outside_requests_have_no_ip(app):
    """Test that an event recorded outside any request (CLI, services) has no ip or user agent."""
    factories.rp()
    for event in events("company:create", "client:create"):
        assert event.ip is None
        assert event.user_agent is None
