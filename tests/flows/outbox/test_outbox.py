"""The delivery outbox (idp.outbox): queued with the change, delivered after the commit by
the app's thread or `idp worker`, retried with backoff, dead letters shown to admins.

Messages are queued here by revoking a client from the test (``clients.revoke_client``)
and delivered with ``flush_outbox()`` (tests/conftest.py), as `idp worker --once` would.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from idp.audit.models import AuditEvent
from idp.clients import service as clients
from idp.db import utcnow
from idp.extensions import db
from idp.outbox import service as outbox
from idp.outbox.models import OutboxMessage
from tests import factories
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.app import flush_outbox
from tests.helpers.oauth import RelyingParty
from tests.helpers.oauth import tokens_for


@pytest.fixture
def relying_party():
    rp = RelyingParty()
    yield rp
    rp.close()


@pytest.fixture
def rp(app, relying_party):
    factories.resident()
    return factories.rp(backchannel_logout_uri=relying_party.uri)


def revoke(client, rp) -> None:
    """Queue one logout token: the resident signed in, then the client is revoked."""
    tokens_for(client, rp, "openid")
    clients.revoke_client(rp.client_id, actor="test")
    db.session.commit()


def message() -> OutboxMessage:
    db.session.rollback()
    (row,) = db.session.scalars(select(OutboxMessage))
    return row


def test_the_message_is_written_with_the_change_and_sent_only_when_flushed(client, rp,
                                                                           relying_party):
    """Test that revoking queues one pending row and sends nothing until delivery."""
    revoke(client, rp)
    row = message()
    assert (row.kind, row.status, row.attempts) == ("backchannel_logout", "pending", 0)
    assert row.target == relying_party.uri and row.client_id == rp.client_id
    assert "logout_token" not in json.dumps(row.payload)
    assert relying_party.received == []
    assert flush_outbox() == [{"client_id": rp.client_id, "result": "delivered", "status": 200}]
    row = message()
    assert (row.status, row.attempts, row.payload) == ("delivered", 1, {})
    assert row.delivered_at is not None
    assert flush_outbox() == []


def test_a_failed_delivery_is_retried_after_its_backoff(client, rp, relying_party):
    """Test that a 500 leaves the message pending until outbox_backoff has passed, then the
    next attempt delivers a freshly signed token."""
    relying_party.status = 500
    start = utcnow()
    with freeze_time(start) as clock:
        revoke(client, rp)
        assert flush_outbox()[0]["result"] == "failed"
        row = message()
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
        assert row.next_attempt_at == start + dt.timedelta(seconds=30)
        relying_party.status = 200
        clock.tick(29)
        assert flush_outbox() == []
        clock.tick(2)
        assert flush_outbox()[0]["result"] == "delivered"
    first, second = relying_party.tokens()
    assert first != second
    failed, ok = events("oauth:backchannel_logout:delivery")
    assert failed.data["attempt"] == 1 and "retry_at" in failed.data
    assert ok.data["result"] == "delivered"


@pytest.mark.parametrize("settings_overrides", [{"outbox_max_attempts": 2}])
def test_after_the_last_attempt_the_message_is_a_dead_letter(client, rp, relying_party, cli):
    """Test that the last failed attempt makes a dead letter, listed on the console and by
    `idp worker dead`, and that sending it again delivers it."""
    relying_party.status = 503
    with freeze_time(utcnow()) as clock:
        revoke(client, rp)
        flush_outbox()
        clock.tick(31)
        flush_outbox()
        clock.tick(3600)
        assert flush_outbox() == []
    row = message()
    assert (row.status, row.attempts, row.last_error) == ("dead", 2, "HTTP 503")
    assert events("oauth:backchannel_logout:delivery")[-1].data["dead"] is True
    listed = cli("worker", "dead", "--json")
    assert listed.exit_code == 0, listed.output
    (dead,) = json.loads(listed.stdout)["dead"]
    assert (dead["id"], dead["client_id"], dead["attempts"]) == (row.id, rp.client_id, 2)
    admin = AdminBrowser(client.application.test_client(), enrolled_admin())
    admin.login()
    page = admin.client.get("/admin/outbox")
    assert page.status_code == 200
    assert relying_party.uri in page.text and "HTTP 503" in page.text
    relying_party.status = 200
    response = admin.form("/admin/outbox", f"/admin/outbox/{row.id}/retry")
    assert response.status_code == 303
    assert flush_outbox()[0]["result"] == "delivered"
    assert message().status == "delivered"


def test_a_refusal_of_the_message_itself_is_not_retried(client, rp, relying_party):
    """Test that a 400 from the client (it refuses the logout token) is a dead letter at once."""
    relying_party.status = 400
    revoke(client, rp)
    flush_outbox()
    assert (message().status, message().attempts) == ("dead", 1)


def test_delivery_refuses_to_run_inside_a_transaction(client, rp):
    """Test that deliver_due() will not wait on a receiver while the caller's transaction
    (and on SQLite the write lock) is open."""
    revoke(client, rp)
    db.session.scalar(select(OutboxMessage.id))
    with pytest.raises(outbox.OutboxError):
        outbox.deliver_due()
    db.session.rollback()


@pytest.mark.commits  # the other worker's connection must see the committed row
def test_a_row_claimed_by_another_worker_is_skipped(client, rp, relying_party, is_postgres):
    """Test that on PostgreSQL a message another worker holds (FOR UPDATE) is skipped, not
    waited for, and delivered once it is free."""
    if not is_postgres:
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's; SQLite has a single writer")
    revoke(client, rp)
    other = db.engine.connect()
    try:
        other.execute(text("SELECT id FROM outbox_messages FOR UPDATE"))
        assert flush_outbox() == []
    finally:
        other.rollback()
        other.close()
    assert relying_party.received == []
    assert flush_outbox()[0]["result"] == "delivered"


def test_worker_once_delivers_what_is_due(client, rp, relying_party, cli, is_postgres):
    """Test that `idp worker --once` seals the audit trail, delivers due messages and reports
    what it did."""
    revoke(client, rp)
    appended = db.session.scalar(select(func.count()).select_from(AuditEvent))
    db.session.rollback()
    result = cli("worker", "--once", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    sealed = report.pop("sealed")
    # PostgreSQL: all of them unless other transactions on the server are open.
    assert sealed <= appended if is_postgres else sealed == appended
    assert report == {"attempted": 1, "delivered": 1, "failed": 0}
    assert len(relying_party.tokens()) == 1


@pytest.mark.parametrize("settings_overrides", [{"outbox_delivery": "thread"}])
def test_the_apps_thread_delivers_after_the_request(client, rp, relying_party):
    """Test that with outbox_delivery=thread the request is answered and the app's thread
    delivers the logout token after it."""
    state = client.application.extensions["idp.outbox"]
    try:
        issued = tokens_for(client, rp, "openid")
        response = client.get("/logout", query_string={"id_token_hint": issued["id_token"]})
        assert response.status_code == 200
        assert state.wait_idle(timeout=30)
    finally:
        state.stop()
    assert len(relying_party.tokens()) == 1
    (delivery,) = events("oauth:backchannel_logout:delivery")
    assert delivery.data["result"] == "delivered"


def test_one_change_queues_one_token_per_session(client, rp, relying_party):
    """Test that ending a session and revoking its tokens in one change (a password reset)
    queues one logout token for it, not two."""
    from idp.accounts import recovery
    from idp.accounts.models import Resident

    tokens_for(client, rp, "openid offline_access")
    recovery.revoke_everything(db.session.scalar(select(Resident.id)))
    db.session.commit()
    assert len(flush_outbox()) == 1
