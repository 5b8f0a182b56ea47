"""The monitoring's rules on synthetic traffic: audit events and token reads placed in
windows with freezegun, evaluated against the company's own baseline."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.access import subjects
from idp.audit.models import AuditEvent
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.exchange import monitoring
from idp.exchange import token_reads
from idp.exchange.models import MonitoringAlert
from idp.exchange.token_reads import TokenRead
from idp.extensions import db
from idp.outbox.models import OutboxMessage
from tests import factories
from tests.helpers import exchange_supply as supply

# The window evaluated at NOW (60 minutes, aligned): 09:00 to 10:00 UTC.
NOW = dt.datetime(2026, 12, 3, 10, 5, tzinfo=dt.UTC)
START = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)


def events_at(when: dt.datetime, tag: AuditTag, n: int, **ids) -> None:
    with freeze_time(when):
        for _ in range(n):
            record(tag, actor="client", **ids)
        db.session.commit()


def baseline(tag: AuditTag, per_window: int, company_id: str, windows: int = 24, **ids) -> None:
    for k in range(1, windows + 1):
        events_at(START - dt.timedelta(hours=k) + dt.timedelta(minutes=30), tag, per_window,
                  company_id=company_id, **ids)


def rules(alerts):
    return sorted((a.rule, a.company_id) for a in alerts)


@pytest.fixture(autouse=True)
def no_pending_reads():
    """Reads another test left unwritten in this process do not leak in."""
    token_reads.forget()
    yield
    token_reads.forget()


@pytest.fixture
def company(app):
    return factories.company("A社")


def test_the_window_is_the_last_complete_one(app):
    w = monitoring.window(NOW)
    assert (w.start, w.end) == (START, START + dt.timedelta(hours=1))
    assert w.baseline_start == START - dt.timedelta(hours=24)


def test_contributions_far_above_the_baseline_are_flagged_once(app, company):
    """Test that 5x the company's own baseline (and at least the minimum) is flagged, with
    the evidence, and that running again adds no duplicate."""
    baseline(AuditTag.RECORD_CONTRIBUTE, 30, company, category="language")
    events_at(START + dt.timedelta(minutes=10), AuditTag.RECORD_CONTRIBUTE, 149,
              company_id=company, client_id="mc_x", category="language")
    assert monitoring.run(NOW) == []  # 149 < 5 x 30
    events_at(START + dt.timedelta(minutes=20), AuditTag.RECORD_CONTRIBUTE, 1,
              company_id=company, client_id="mc_x", category="language")
    [alert] = monitoring.run(NOW, admin_emails=["ops@machi.example.jp"])
    assert alert.rule == "contributions"
    assert alert.evidence["count"] == 150
    assert alert.evidence["baseline_per_window"] == 30
    assert alert.evidence["by_category"] == {"language": 150}
    assert alert.evidence["by_client"] == {"mc_x": 150}
    db.session.commit()
    assert monitoring.run(NOW) == []
    audited = db.session.scalars(select(AuditEvent).where(
        AuditEvent.tag == str(AuditTag.MONITORING_ALERT))).all()
    assert [e.data["alert_id"] for e in audited] == [alert.id]
    mailed = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "mail")).all()
    assert len(mailed) == 1
    assert "監視" in mailed[0].payload["subject"] or "Monitoring" in mailed[0].payload["subject"]


def test_a_quiet_company_below_the_minimum_is_not_flagged(app, company):
    events_at(START + dt.timedelta(minutes=10), AuditTag.RECORD_CONTRIBUTE, 99,
              company_id=company, category="language")
    assert monitoring.run(NOW) == []


def test_releases_far_above_the_baseline_are_flagged_per_category(app, company):
    """Test that RECORD_RELEASE events ({categories, links}) count for the recipient."""
    events_at(START + dt.timedelta(minutes=5), AuditTag.RECORD_RELEASE, 100,
              company_id=company, client_id="mc_b", categories=["language", "household"],
              links=[1, 2])
    [alert] = monitoring.run(NOW)
    assert (alert.rule, alert.company_id) == ("releases", company)
    assert alert.evidence["by_category"] == {"language": 100, "household": 100}


def test_contributions_for_residents_never_served(app, client):
    """Test that unknown subs (refused) plus residents the company has a sub for but
    never a token or consent add up to the never-served rule."""
    who = supply.contributor("A社")
    served_id, served_sub = supply.served(who.company_id, "served@example.jp")
    with freeze_time(START + dt.timedelta(minutes=1)):
        token = supply.token(client, who, "contribute:language")
        # Five residents with a pairwise sub at A but no token or consent of A's clients.
        for i in range(5):
            resident_id, sub = supply.served(who.company_id, f"r{i}@example.jp")
            assert supply.post(client, token, [supply.record(sub, record_id=f"r{i}")]) \
                .status_code == 201
        # Six subs that name nobody A served, refused in one batch.
        answer = supply.post(client, token, [supply.record(f"nobody-{i}", record_id=f"n{i}")
                                             for i in range(6)])
        assert answer.status_code == 403
    db.session.commit()
    found = [a for a in monitoring.run(NOW) if a.rule == "never_served"]
    assert [a.company_id for a in found] == [who.company_id]
    evidence = found[0].evidence
    assert (evidence["unknown_subs"], evidence["subs_without_token_or_consent"]) == (6, 5)
    assert subjects.existing_subject(served_id, who.company_id) == served_sub


def test_residents_the_company_served_do_not_count(app, client):
    who = supply.contributor("A社")
    rp = factories.rp(who.company_id)
    factories.resident()
    factories.tokens(client, rp, scope="openid")  # hanako has a token of A's service
    sub = subjects.existing_subject(
        db.session.scalar(select(AuditEvent.resident_id).where(
            AuditEvent.tag == str(AuditTag.TOKEN_ISSUE))), who.company_id)
    with freeze_time(START + dt.timedelta(minutes=1)):
        token = supply.token(client, who, "contribute:language")
        assert supply.post(client, token, [supply.record(sub)]).status_code == 201
    db.session.commit()
    assert [a for a in monitoring.run(NOW) if a.rule == "never_served"] == []


def test_one_token_read_far_more_often_than_usual(app, client, company):
    """Test that a token read far above the company's usual reads per token is flagged."""
    who = supply.contributor("A社")
    supply.token(client, who, "contribute:language")
    supply.token(client, who, "contribute:language")
    from idp.access.models import Token

    quiet, busy = db.session.scalars(select(Token.id).order_by(Token.id)).all()
    for k in range(1, 25):
        db.session.add(TokenRead(token_id=quiet, bucket=START - dt.timedelta(hours=k),
                                 client_id=who.client_id, company_id=who.company_id, count=30))
    db.session.add(TokenRead(token_id=busy, bucket=START + dt.timedelta(minutes=5),
                             client_id=who.client_id, company_id=who.company_id, count=299))
    db.session.add(TokenRead(token_id=quiet, bucket=START + dt.timedelta(minutes=5),
                             client_id=who.client_id, company_id=who.company_id, count=30))
    db.session.commit()
    assert monitoring.run(NOW) == []  # 299 < 10 x 30
    db.session.add(TokenRead(token_id=busy, bucket=START + dt.timedelta(minutes=10),
                             client_id=who.client_id, company_id=who.company_id, count=1))
    [alert] = monitoring.run(NOW)
    assert (alert.rule, alert.client_id) == ("token_reads", who.client_id)
    assert alert.evidence["tokens"] == [{"token_id": busy, "reads": 300,
                                         "usual_reads_per_token": 30.0, "threshold": 300.0}]


def total_reads() -> int:
    return sum(r.count for r in db.session.scalars(select(TokenRead)))


def test_reads_are_counted_per_token(app, client):
    """Test that the bearer check counts each accepted read, held in the process until a
    flush (a few reads write nothing)."""
    rp = factories.rp()
    factories.resident()
    access_token = factories.tokens(client, rp, scope="openid")["access_token"]
    for _ in range(3):
        assert client.get("/userinfo", headers={
            "Authorization": f"Bearer {access_token}"}).status_code == 200
    assert client.get("/userinfo", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert total_reads() == 0
    assert token_reads.flush() == 3
    assert total_reads() == 3


def test_a_busy_token_writes_its_reads_as_it_goes(app, client):
    """Test that a token's reads are written every FLUSH_AT reads and after FLUSH_AFTER."""
    rp = factories.rp()
    factories.resident()
    # A minute into a five-minute bucket, so the minute later is in the same bucket.
    with freeze_time(START + dt.timedelta(minutes=1)) as frozen:
        bearer = {"Authorization": "Bearer " + factories.tokens(client, rp, scope="openid")[
            "access_token"]}
        for _ in range(token_reads.FLUSH_AT):
            client.get("/userinfo", headers=bearer)
        assert total_reads() == token_reads.FLUSH_AT
        client.get("/userinfo", headers=bearer)
        assert total_reads() == token_reads.FLUSH_AT
        frozen.tick(token_reads.FLUSH_AFTER)
        client.get("/userinfo", headers=bearer)
        assert total_reads() == token_reads.FLUSH_AT + 2
        # A read in the next bucket writes what the last bucket still held.
        client.get("/userinfo", headers=bearer)
        frozen.tick(token_reads.BUCKET)
        client.get("/userinfo", headers=bearer)
        assert total_reads() == token_reads.FLUSH_AT + 3
    assert token_reads.purge(START + dt.timedelta(hours=1)) >= 1
    assert total_reads() == 0


def test_failed_client_authentication_bursts(app, client):
    """Test that failed client authentications are audited and a burst is flagged, per
    client and per address for ids that name no client."""
    who = supply.contributor("A社")
    with freeze_time(START + dt.timedelta(minutes=3)):
        for _ in range(20):
            answer = client.post("/token", data={"grant_type": "client_credentials"},
                                 auth=(who.client_id, "wrong"))
            assert answer.status_code == 401
        for i in range(19):
            client.post("/token", data={"grant_type": "client_credentials"},
                        auth=(f"mc_guess{i}", "wrong"))
    db.session.commit()
    alerts = monitoring.run(NOW)
    assert rules(alerts) == [("auth_failures", who.company_id)]
    assert alerts[0].client_id == who.client_id
    assert alerts[0].evidence["failures"] == 20
    assert alerts[0].evidence["endpoints"] == {"token": 20}


def test_acknowledge(app, company):
    events_at(START + dt.timedelta(minutes=5), AuditTag.RECORD_RELEASE, 100,
              company_id=company, categories=["language"], links=[1])
    [alert] = monitoring.run(NOW)
    monitoring.acknowledge(alert.id, "ad_someone")
    assert alert.acknowledged_by == "ad_someone"
    with pytest.raises(monitoring.MonitoringError):
        monitoring.acknowledge(alert.id, "ad_someone")
    with pytest.raises(monitoring.MonitoringError):
        monitoring.acknowledge(424242, "ad_someone")
    assert monitoring.alerts(open_only=True) == []
    assert [a.id for a in monitoring.alerts()] == [alert.id]
    assert db.session.get(MonitoringAlert, alert.id).acknowledged_at is not None
