"""Single-use guarantees under concurrency, over real HTTP against a threaded server.

These are the proofs for PostgreSQL (run with IDP_TEST_DATABASE_URL); on SQLite
they hold too, because writers queue on BEGIN IMMEDIATE (``idp.db``).
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func
from sqlalchemy import select

from idp.access.models import Token
from idp.accounts.models import Resident
from idp.clients.models import Client
from idp.consent import service as consent_service
from idp.consent.models import Consent
from idp.extensions import db
from tests import factories
from tests.factories import Browser
from tests.helpers.live import serve

PARALLEL = 20


@pytest.fixture
def rp(app):
    factories.resident()
    return factories.rp()


def in_parallel(fn, n=PARALLEL):
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_a_code_is_redeemed_once(app, client, migrated, rp):
    """Test that 20 parallel redemptions of one code give one token response."""
    verifier, challenge = factories.pkce_pair()
    code = Browser(client).code_flow(rp, scope="openid email offline_access",
                                     code_challenge=challenge,
                                     code_challenge_method="S256")["code"]
    db.session.rollback()
    with serve(migrated) as base:
        def redeem(_):
            return requests.post(base + "/token", timeout=60, auth=(rp.client_id,
                                                                    rp.client_secret), data={
                "grant_type": "authorization_code", "code": code,
                "redirect_uri": rp.redirect_uri, "code_verifier": verifier})

        responses = in_parallel(redeem)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * (PARALLEL - 1), statuses
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    db.session.rollback()
    # Every loser saw a replay, so the winner's tokens were revoked too (RFC 6749 §4.1.2).
    rows = db.session.scalars(select(Token)).all()
    assert len(rows) == 1 and rows[0].revoked_at is not None


def test_a_refresh_token_rotates_once(app, client, migrated, rp):
    """Test that 20 parallel refreshes give one success and revoke the family."""
    first = factories.tokens(client, rp)
    db.session.rollback()
    with serve(migrated) as base:
        def refresh(_):
            return requests.post(base + "/token", timeout=60, auth=(rp.client_id,
                                                                    rp.client_secret), data={
                "grant_type": "refresh_token", "refresh_token": first["refresh_token"]})

        responses = in_parallel(refresh)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * (PARALLEL - 1), statuses
    db.session.rollback()
    live = db.session.scalar(select(func.count()).select_from(Token)
                             .where(Token.revoked_at.is_(None)))
    assert live == 0  # reuse detection revoked the whole family, the winner's token included


def test_parallel_consent_grants_leave_one_row(app, rp):
    """Test that parallel consent submissions for one pair store one consent row."""
    resident_id = db.session.scalar(select(Resident.id))
    db.session.rollback()

    def grant(i):
        with app.app_context():
            resident = db.session.get(Resident, resident_id)
            client_row = db.session.get(Client, rp.client_id)
            scopes = ["openid", "email"] if i % 2 else ["openid", "name"]
            consent_service.grant(resident, client_row, scopes, scopes)
            db.session.commit()
            db.session.remove()
            return True

    results = in_parallel(lambda i: _isolated(grant, i))
    assert all(results)
    assert db.session.scalar(select(func.count()).select_from(Consent)) == 1


def _isolated(fn, i):
    """Run outside the test's app context, as a separate request would."""
    return contextvars.Context().run(fn, i)


def test_parallel_device_polls_after_approval_issue_tokens_once(app, client, migrated):
    """Test that 20 parallel polls of an approved device code yield tokens exactly once."""
    from idp.kiosk import service as kiosks
    from tests.helpers.device import approve
    from tests.helpers.device import authorize

    factories.resident()
    company = factories.company("C社")
    kiosk_row, secret, _ = kiosks.create_kiosk(company, "K", "北2条広場")
    kiosk = factories.RP(kiosk_row.id, secret, company, redirect_uri="")
    db.session.commit()
    body = authorize(client, kiosk)
    assert approve(client, body["user_code"]).status_code == 200
    db.session.rollback()
    with serve(migrated) as base:
        def poll(_):
            return requests.post(base + "/token", timeout=60, auth=(kiosk.client_id, secret),
                                 data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                                       "device_code": body["device_code"]})

        responses = in_parallel(poll)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * (PARALLEL - 1), statuses
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Token)) == 1


def test_twin_contribution_batches_store_each_record_once(app, client, migrated):
    """Test that 20 parallel copies of one contribution batch all succeed (201), store each
    record once, and that the copies count as duplicates: a retrying backend is safe."""
    import datetime as dt

    from idp.access.subjects import subject_for
    from idp.db import utcnow
    from idp.exchange import categories
    from idp.exchange import contracts
    from idp.exchange.models import RegisteredRecord

    resident = factories.resident()
    categories.ensure_defaults()
    company = factories.company("A社")
    contracts.create(company, ["language", "interests"], "登録データの提供",
                     valid_until=(utcnow() + dt.timedelta(days=365)).date())
    sub = subject_for(resident.id, company)
    db.session.commit()
    backend = factories.rp(company, scopes=["openid", "contribute:language",
                                            "contribute:interests"],
                           grant_types=["client_credentials"], redirect_uris=[])
    token = client.post("/token", auth=(backend.client_id, backend.client_secret),
                        data={"grant_type": "client_credentials",
                              "scope": "contribute:language contribute:interests"})
    bearer = {"Authorization": f"Bearer {token.json['access_token']}"}
    batch = {"records": [
        {"sub": sub, "category": "language", "value": "ja", "record_id": "lang-1",
         "collected_at": "2026-12-01T09:00:00+09:00"},
        {"sub": sub, "category": "interests", "value": ["観光"], "record_id": "int-1",
         "collected_at": "2026-12-01T09:00:00+09:00"}]}
    db.session.rollback()
    with serve(migrated) as base:
        responses = in_parallel(lambda _: requests.post(
            base + "/api/registered-data", json=batch, headers=bearer, timeout=60))
    assert sorted(r.status_code for r in responses) == [201] * PARALLEL, \
        [r.text for r in responses if r.status_code != 201]
    assert sum(r.json()["stored"] for r in responses) == 2
    assert sum(r.json()["duplicates"] for r in responses) == 2 * PARALLEL - 2
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(RegisteredRecord)) == 2


def test_twin_touch_batches_store_each_event_once(app, client, migrated):
    """Test that 20 parallel copies of one batch of 100 touches all succeed (201), store
    each touch once, and count the copies as duplicates: on PostgreSQL a batch is a plain
    INSERT first, and one that meets the touches of a twin (committed, or waited for)
    is rolled back and stored again skipping them (``idp.db.insert_new``)."""
    import datetime as dt

    from idp.audit.models import AuditEvent
    from idp.kiosk.models import TouchEvent

    kiosk_id, _, token = factories.kiosk_token(client)
    now = dt.datetime.now(dt.UTC).isoformat()
    batch = {"events": [{"occurred_at": now, "target": "map-north", "event_id": f"twin-{i}"}
                        for i in range(100)]}
    db.session.rollback()
    with serve(migrated) as base:
        responses = in_parallel(lambda _: requests.post(
            base + "/api/touch-events", json=batch, timeout=60,
            headers={"Authorization": f"Bearer {token}"}))
    assert sorted(r.status_code for r in responses) == [201] * PARALLEL, \
        [r.text for r in responses if r.status_code != 201]
    assert sum(r.json()["stored"] for r in responses) == 100
    assert sum(r.json()["duplicates"] for r in responses) == 100 * (PARALLEL - 1)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TouchEvent)
                             .where(TouchEvent.client_id == kiosk_id)) == 100
    # Each answer has its audit entry, the retried ones included.
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.client_id == kiosk_id,
        AuditEvent.tag == "kiosk:touch_events:store")) == PARALLEL


def test_a_touch_batch_waits_on_no_lock_of_its_client(app, client, migrated, is_postgres):
    """Test that a kiosk's batch is stored while another transaction holds the kiosk client's
    row FOR UPDATE: nothing in the batch locks that row, which every batch of every kiosk of
    the company shares (a foreign key from the touches to it locked it for each touch). The
    server's connections give up on a lock after 2 s, so a wait would answer an error."""
    import datetime as dt

    from sqlalchemy import create_engine
    from sqlalchemy import text

    from idp.kiosk.models import TouchEvent

    if not is_postgres:
        pytest.skip("SQLite has one writer at a time")
    kiosk_id, _, token = factories.kiosk_token(client)
    now = dt.datetime.now(dt.UTC).isoformat()
    batch = {"events": [{"occurred_at": now, "target": "map-north", "event_id": f"held-{i}"}
                        for i in range(100)]}
    db.session.rollback()
    holder = create_engine(migrated)
    try:
        with holder.connect() as held, serve(
                migrated + ("&" if "?" in migrated else "?")
                + "options=-c%20lock_timeout%3D2000") as base:
            held.execute(text("SELECT id FROM clients WHERE id = :id FOR UPDATE"),
                         {"id": kiosk_id})
            answer = requests.post(base + "/api/touch-events", json=batch, timeout=60,
                                   headers={"Authorization": f"Bearer {token}"})
            held.rollback()
    finally:
        holder.dispose()
    assert answer.status_code == 201, answer.text
    assert answer.json()["stored"] == 100
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TouchEvent)
                             .where(TouchEvent.client_id == kiosk_id)) == 100
