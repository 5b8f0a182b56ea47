"""The hot paths use as few SQL statements as they need (docs/performance.md).

Statements are counted with SQLAlchemy's ``before_cursor_execute`` engine
event around one request, after a first request has warmed up whatever is
created on first use (signing keys, pairwise subjects). Transaction control
(BEGIN, COMMIT, SQLite's BEGIN IMMEDIATE) is not counted. The audit trail's
statements (``audit_*`` tables, another module's business) are counted apart:
a commit's audit events are one INSERT of unsealed entries, which locks no
shared row (the sealer chains them later, off the request path).

No slow hash either: the token, introspection and userinfo endpoints never
call argon2 (client secrets and tokens are high-entropy, compared by digest).
"""

from __future__ import annotations

import contextvars
import logging
import re
from contextlib import contextmanager
from unittest import mock

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import event

from idp import metrics
from idp.accounts import passwords
from idp.clients import service as clients
from idp.extensions import db
from idp.keys import service as keys
from idp.kiosk import service as kiosks
from tests import factories

AUDIT = re.compile(r"\baudit_\w+")
CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)

def audit_append(statements: list[str]) -> bool:
    """The audit trail's part of a commit (idp.audit.chain.append): one INSERT of the
    entries, nothing read, nothing locked, no head moved."""
    return len(statements) == 1 and statements[0].startswith("INSERT INTO audit_events ")


class Statements:
    def __init__(self):
        self.protocol: list[str] = []
        self.audit: list[str] = []
        # Per protocol statement: whether its connection was in autocommit (psycopg's
        # own flag; SQLite's driver has none: None).
        self.autocommit: list[bool | None] = []
        # Per protocol statement: whether it ran inside a transaction block (psycopg's
        # transaction status as the statement is sent; None on SQLite).
        self.in_transaction: list[bool | None] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if CONTROL.match(statement):
            return
        driver = conn.connection.driver_connection
        if not AUDIT.search(statement):
            self.autocommit.append(getattr(driver, "autocommit", None))
            info = getattr(driver, "info", None)
            self.in_transaction.append(
                None if info is None else info.transaction_status != TransactionStatus.IDLE)
        (self.audit if AUDIT.search(statement) else self.protocol).append(
            " ".join(statement.split()))


def refuse_slow_hash(*args, **kwargs):
    raise AssertionError("argon2 on a protocol hot path")


@contextmanager
def counted():
    """Count the statements of the requests made inside; argon2 must not be reached."""
    statements = Statements()
    engine = db.engine
    event.listen(engine, "before_cursor_execute", statements)
    try:
        with mock.patch.object(passwords, "verify", refuse_slow_hash), \
                mock.patch.object(passwords, "hash_password", refuse_slow_hash):
            yield statements
    finally:
        event.remove(engine, "before_cursor_execute", statements)


@pytest.fixture(autouse=True)
def request_log_on():
    """The request log at INFO, production's default: its line is written after the
    commit, and whatever it reads counts (it once re-read the client)."""
    log = logging.getLogger("idp.request")
    level = log.level
    log.setLevel(logging.INFO)
    yield
    log.setLevel(level)


@pytest.fixture
def company():
    return factories.company()


@pytest.fixture
def backend(company):
    """The company's backend: client_credentials, and introspection of its RP's tokens."""
    client, secret = clients.register_client(
        company, "バックエンド", scopes=["touch_events"], grant_types=["client_credentials"],
        purpose="テスト")
    db.session.commit()
    return client.id, secret


@pytest.fixture
def access_token(client, company):
    factories.resident()
    rp = factories.rp(company)
    return factories.tokens(client, rp, scope="openid name email")["access_token"]


def test_token_client_credentials(client, backend, is_postgres):
    """Test that client_credentials, its client cached, is one token insert that reads the
    revocation epoch along (idp.access.epoch), plus the audit append; on PostgreSQL both
    in one statement, which inserts only under the epoch the cached client was read with."""
    data = {"grant_type": "client_credentials", "scope": "touch_events"}
    assert client.post("/token", data=data, auth=backend).status_code == 200
    with counted() as statements:
        assert client.post("/token", data=data, auth=backend).status_code == 200
    if is_postgres:
        assert statements.protocol == [] and len(statements.audit) == 1, statements.audit
        assert statements.audit[0].startswith("WITH issued AS (INSERT INTO tokens ")
        assert "FROM revocation_epoch" in statements.audit[0]
        assert "INSERT INTO audit_events " in statements.audit[0]
        return
    assert len(statements.protocol) == 1, statements.protocol
    assert statements.protocol[0].startswith("INSERT INTO tokens")
    assert "FROM revocation_epoch" in statements.protocol[0]
    assert audit_append(statements.audit), statements.audit


@pytest.mark.parametrize("beneath_flask", [True, False])
def test_introspection(app, backend, access_token, beneath_flask, monkeypatch):
    """Test that introspection, its caller cached, is the token's lookup with the
    revocation epoch along, and writes nothing: answered beneath Flask
    (``idp.oauth.direct``) or by Flask."""
    monkeypatch.setattr(app.extensions["idp.direct"], "enabled", beneath_flask)
    rs = app.test_client()  # a resource server: no cookies
    data = {"token": access_token, "token_type_hint": "access_token"}
    rs.post("/introspect", data=data, auth=backend)  # the caller is in the cache now
    answered = metrics.DIRECT_ANSWERS.labels(endpoint="oauth.introspect")
    before = answered._value.get()
    with counted() as statements:
        response = rs.post("/introspect", data=data, auth=backend)
    assert response.json["active"] is True
    assert answered._value.get() == before + beneath_flask
    assert len(statements.protocol) == 1, statements.protocol
    assert "consents" in statements.protocol[0]  # the consent in force rides along
    assert "FROM revocation_epoch" in statements.protocol[0]
    assert statements.audit == []


@pytest.mark.commits  # the request's session starts as in production, holding no connection
def test_a_client_credentials_token_is_one_round_trip(client, backend, is_postgres):
    """Test that on PostgreSQL a client-credentials token and its audit entry are one
    statement committed by itself (no BEGIN, no COMMIT), and that the entry it wrote is
    the trail's like any other: it names the token, and seals and verifies."""
    if not is_postgres:
        pytest.skip("the one-statement token is PostgreSQL's")
    from sqlalchemy import select

    from idp.access.models import Token
    from idp.audit import chain
    from idp.audit.models import AuditEvent
    from idp.keys import audit_heads
    from tests.helpers.audit import seal_all

    data = {"grant_type": "client_credentials", "scope": "touch_events"}
    assert client.post("/token", data=data, auth=backend).status_code == 200
    autocommit = []

    def note(conn, cursor, statement, parameters, context, executemany):
        autocommit.append(conn.connection.driver_connection.autocommit)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        with counted() as statements:
            assert client.post("/token", data=data, auth=backend).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert len(statements.audit) == 1 and statements.protocol == []
    assert autocommit == [True]
    db.session.rollback()
    token = db.session.scalars(select(Token).order_by(Token.id.desc())).first()
    entry = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert entry.tag == "oauth:token:issue" and entry.client_id == backend[0]
    assert entry.data == {"grant_type": "client_credentials", "scope": "touch_events",
                          "token_id": token.id, "family": token.family_id,
                          "refresh_token": False}
    assert entry.xid is not None
    seal_all()
    db.session.rollback()
    result = chain.verify(db.session, check=audit_heads.check)
    assert result.ok and result.unsealed == 0, result


@pytest.mark.commits  # the request's session starts as in production, holding no connection
@pytest.mark.parametrize("beneath_flask", [True, False])
def test_introspection_reads_outside_a_transaction(app, backend, access_token,
                                                    is_postgres, beneath_flask, monkeypatch):
    """Test that introspection's one statement runs on a connection in autocommit on
    PostgreSQL (one round trip, no BEGIN or COMMIT: it writes nothing), answered beneath
    Flask or by Flask."""
    monkeypatch.setattr(app.extensions["idp.direct"], "enabled", beneath_flask)
    rs = app.test_client()  # a resource server: no cookies
    data = {"token": access_token, "token_type_hint": "access_token"}
    rs.post("/introspect", data=data, auth=backend)
    answered = metrics.DIRECT_ANSWERS.labels(endpoint="oauth.introspect")
    before = answered._value.get()
    with counted() as statements:
        assert rs.post("/introspect", data=data, auth=backend).json["active"] is True
    assert answered._value.get() == before + beneath_flask
    assert len(statements.protocol) == 1, statements.protocol
    assert statements.autocommit == [True if is_postgres else None]


@pytest.mark.commits  # the request's session starts as in production, holding no connection
@pytest.mark.parametrize("beneath_flask", [True, False])
def test_userinfo_reads_first_and_writes_the_release_in_one_transaction(app, access_token,
                                                                       is_postgres,
                                                                       beneath_flask,
                                                                       monkeypatch):
    """Test that UserInfo on PostgreSQL reads the token in autocommit: a call whose release
    is already recorded is one round trip; the first call's writes (the release on the
    token, its audit entry) run in one transaction begun before the first of them. Flask
    reads on the session's connection (idp.db.reads_first: BEGIN sent before the first
    write); beneath Flask the token is read alone on a kept autocommit connection
    (idp.db.run_alone) and the writes go to the session's transaction, which the driver
    begins with the first of them."""
    if not is_postgres:
        pytest.skip("reads_first is PostgreSQL's (SQLite keeps its own transactions)")
    monkeypatch.setattr(app.extensions["idp.direct"], "enabled", beneath_flask)
    client = app.test_client()  # a relying party's back end: no cookies
    bearer = {"Authorization": f"Bearer {access_token}"}
    with counted() as first:
        assert client.get("/userinfo", headers=bearer).status_code == 200
    assert [s.split()[0] for s in first.protocol] == ["SELECT", "UPDATE"], first.protocol
    if beneath_flask:
        assert first.autocommit == [True, False]
    else:
        assert first.in_transaction == [False, True]
    assert audit_append(first.audit), first.audit
    with counted() as statements:
        assert client.get("/userinfo", headers=bearer).status_code == 200
    assert len(statements.protocol) == 1 and statements.audit == []
    assert statements.autocommit == [True] and statements.in_transaction == [False]


@pytest.mark.parametrize("beneath_flask", [True, False])
def test_userinfo(app, access_token, beneath_flask, monkeypatch):
    """Test that userinfo is one query (the token with its client, its resident and the
    consent in force) once the release is recorded: a repeated call with the same token
    writes nothing. Answered beneath Flask (``idp.oauth.direct``) or by Flask."""
    monkeypatch.setattr(app.extensions["idp.direct"], "enabled", beneath_flask)
    client = app.test_client()  # a relying party's back end: no cookies
    answered = metrics.DIRECT_ANSWERS.labels(endpoint="oauth.userinfo")
    before = answered._value.get()
    bearer = {"Authorization": f"Bearer {access_token}"}
    with counted() as first:
        assert client.get("/userinfo", headers=bearer).status_code == 200
    assert [s.split()[0] for s in first.protocol] == ["SELECT", "UPDATE"], first.protocol
    assert first.protocol[1].startswith("UPDATE tokens SET released_claims")
    assert audit_append(first.audit), first.audit
    with counted() as statements:
        assert client.get("/userinfo", headers=bearer).status_code == 200
    assert len(statements.protocol) == 1, statements.protocol
    assert " FROM tokens " in statements.protocol[0]
    assert all(table in statements.protocol[0] for table in ("residents", "clients", "consents"))
    assert statements.audit == []
    assert answered._value.get() == before + 2 * beneath_flask


@pytest.mark.commits  # the request's session starts as in production, holding no connection
def test_device_polling_while_pending(client, company, is_postgres):
    """Test that a pending poll, its kiosk cached, is one UPDATE committed by itself on
    PostgreSQL (no BEGIN, no COMMIT: one round trip), under the revocation epoch the
    cache was read with; on SQLite the code's lookup with the epoch along, and one
    UPDATE."""
    kiosk, secret, _ = kiosks.create_kiosk(company, "キオスク", "北1条西2丁目")
    kiosk_id = kiosk.id
    db.session.commit()
    started = client.post("/device_authorization", data={"scope": "openid touch_events"},
                          auth=(kiosk_id, secret)).json
    data = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": started["device_code"]}
    with counted() as statements:
        response = client.post("/token", data=data, auth=(kiosk_id, secret))
    assert response.json["error"] == "authorization_pending"
    assert statements.audit == []
    if is_postgres:
        assert len(statements.protocol) == 1, statements.protocol
        assert "UPDATE device_codes" in statements.protocol[0]
        assert "FROM revocation_epoch" in statements.protocol[0]
        assert statements.autocommit == [True]
        return
    assert len(statements.protocol) == 2, statements.protocol
    assert "FROM revocation_epoch" in statements.protocol[0]
    assert statements.protocol[1].startswith("UPDATE device_codes")


def test_discovery_and_jwks_need_no_query_once_warm(client):
    """Test that discovery and JWKS are served from their short caches once warm (discovery
    lists the scopes of the categories of registered data in use, cached like the keys)."""
    assert client.get("/jwks.json").status_code == 200
    assert client.get("/.well-known/openid-configuration").status_code == 200
    with counted() as statements:
        assert client.get("/.well-known/openid-configuration").status_code == 200
        assert client.get("/jwks.json").status_code == 200
    assert statements.protocol == [] and statements.audit == []


def test_a_cached_client_outside_the_protocol_views_costs_one_epoch_read(app, backend):
    """Test that a client lookup that no view confirms afterwards (the CORS answer, the
    console) reads the revocation epoch first, and only that, once the client is cached."""

    def request_looking_up_twice():
        # A request of its own (its own app context and g), as IsolatedClient makes them.
        with app.test_request_context():
            assert clients.active_client(backend[0]) is not None
            assert clients.active_client(backend[0]) is not None  # read once per request
            db.session.remove()

    contextvars.Context().run(request_looking_up_twice)
    with counted() as statements:
        contextvars.Context().run(request_looking_up_twice)
    assert len(statements.protocol) == 1, statements.protocol
    assert statements.protocol[0].startswith("SELECT revocation_epoch.value FROM revocation_epoch")


@contextmanager
def statement_objects():
    """The statement objects the requests made inside hand to SQLAlchemy, in order."""
    seen: list = []

    def before_execute(conn, clauseelement, multiparams, params, execution_options):
        if "Savepoint" not in type(clauseelement).__name__:  # the test's own transaction
            seen.append(clauseelement)

    engine = db.engine
    event.listen(engine, "before_execute", before_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_execute", before_execute)


def test_hot_paths_run_statements_built_once(client, backend, access_token, company):
    """Test that the endpoints a company calls on every request of its users run statement
    objects built once per process, not per request: building, keying and caching a
    statement cost a third of introspection's CPU (docs/performance.md). What changes
    per request (a digest, the time) is a bound parameter."""
    kiosk, kiosk_secret, _ = kiosks.create_kiosk(company, "キオスク", "北1条西2丁目")
    kiosk_auth = (kiosk.id, kiosk_secret)
    db.session.commit()
    device_code = client.post("/device_authorization", data={"scope": "openid touch_events"},
                              auth=kiosk_auth).json["device_code"]
    bearer = {"Authorization": f"Bearer {access_token}"}
    requests = {
        "token": lambda: client.post("/token", auth=backend, data={
            "grant_type": "client_credentials", "scope": "touch_events"}),
        "introspection": lambda: client.post("/introspect", auth=backend, data={
            "token": access_token, "token_type_hint": "access_token"}),
        "userinfo": lambda: client.get("/userinfo", headers=bearer),
        "device polling": lambda: client.post("/token", auth=kiosk_auth, data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device_code}),
    }
    for name, send in requests.items():
        send(), send()  # warm: the client cached, the release recorded
        with statement_objects() as first:
            assert send().status_code in (200, 400), name
        with statement_objects() as second:
            assert send().status_code in (200, 400), name
        assert first, name
        assert [id(s) for s in second] == [id(s) for s in first], (
            name, [str(s).split("\n")[0] for s in first])


def test_authorize_with_a_remembered_consent_asks_each_question_once(client, company):
    """Test that /authorize for a signed-in resident whose consent is remembered reads the
    client from the cache, the terms in force once and narrowly (their version, not
    their texts), and the nonce's replay once: Authlib validates the request again
    when it issues the code, and the policy asks the terms twice (accepted? consent
    under them?). The consent is read once too: the code is granted within the consent
    the policy's check found in force."""
    factories.resident()
    rp = factories.rp(company)
    browser = factories.Browser(client)
    factories.tokens(client, rp, scope="openid name")  # signs in, consents, warms caches
    with counted() as statements:
        response = browser.authorize(rp, scope="openid name", nonce="n-2")
    assert response.status_code == 302 and "code=" in response.headers["Location"]
    reads = [s for s in statements.protocol if s.startswith("SELECT")]
    assert not any(" FROM clients " in s for s in reads), reads
    terms = [s for s in reads if s.startswith("SELECT terms_versions.")]
    assert terms and all(s.startswith("SELECT terms_versions.version FROM") for s in terms)
    assert len(terms) == 1, terms
    assert sum("authorization_codes.nonce" in s for s in reads) == 1, reads
    assert sum(" FROM consents " in s for s in reads) == 1, reads


def test_a_code_is_redeemed_with_its_resident_and_browser_session_in_its_lookup(client,
                                                                                 company):
    """Test that redeeming a code reads its resident and its browser session (the ID
    token's subject, ``amr``, ``acr`` and ``sid``), the consent in force and the
    resident's `sub` at the company in the code's own lookup, not in a statement each,
    and no signing key once the schedule is kept."""
    keys.ensure_keys()  # (a key made on demand is kept from the next request on)
    factories.resident()
    rp = factories.rp(company)
    factories.tokens(client, rp, scope="openid name")  # signs in, consents, warms caches
    verifier, challenge = factories.pkce_pair()
    code = factories.Browser(client).code_flow(rp, scope="openid name", code_challenge=challenge,
                                               code_challenge_method="S256")["code"]
    with counted() as statements:
        response = factories.exchange(client, rp, code, verifier)
    assert response.status_code == 200 and "id_token" in response.json
    lookup = next(s for s in statements.protocol
                  if s.startswith("SELECT ") and "authorization_codes.code_digest =" in s)
    assert "residents" in lookup and "browser_sessions" in lookup, lookup
    assert "consents" in lookup and "pairwise_subjects" in lookup, lookup
    assert not any(s.startswith(("SELECT residents.", "SELECT browser_sessions.",
                                 "SELECT consents.", "SELECT pairwise_subjects."))
                   for s in statements.protocol), statements.protocol
    # The signing schedule is kept in process under the revocation epoch (idp.keys).
    assert not any("signing_keys" in s for s in statements.protocol), statements.protocol


@pytest.mark.commits
@pytest.mark.parametrize("beneath_flask", [True, False])
def test_a_userinfo_release_that_fails_to_commit_leaves_nothing_written(app, access_token,
                                                                        is_postgres,
                                                                        beneath_flask,
                                                                        monkeypatch):
    """Test that UserInfo's first call, which reads in autocommit (idp.db.reads_first),
    still writes its release all or nothing: when the commit fails after the audit entry
    was written, neither the entry nor the release on the token is kept. Beneath Flask,
    the failed answer goes on to Flask, which fails the same way and answers 500."""
    monkeypatch.setattr(app.extensions["idp.direct"], "enabled", beneath_flask)
    client = app.test_client()  # a relying party's back end: no cookies
    from sqlalchemy import func
    from sqlalchemy import select

    from idp.access.models import Token
    from idp.audit.models import AuditEvent
    from idp.audit.tags import AuditTag

    def releases() -> int:
        db.session.rollback()
        return db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.tag == str(AuditTag.CLAIMS_RELEASE)))

    before = releases()
    with mock.patch("idp.audit.service.metrics.count_events",
                    side_effect=RuntimeError("the commit fails")):
        response = client.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 500
    assert releases() == before
    assert db.session.scalars(select(Token.released_claims)).all() == [None]


def touch_batch(tag: str, count: int) -> dict:
    import datetime as dt

    now = dt.datetime.now(dt.UTC).isoformat()
    return {"events": [{"occurred_at": now, "target": "map-north", "event_id": f"{tag}-{i}"}
                       for i in range(count)]}


@pytest.mark.commits  # the request's session starts as in production, holding no connection
@pytest.mark.parametrize("beneath_flask", [True, False])
def test_a_touch_batch_is_its_token_and_one_insert(app, client, is_postgres, beneath_flask,
                                                   monkeypatch):
    """Test that a kiosk's batch of touches is the token read (with its client, company,
    consent and the epoch, in autocommit on PostgreSQL) and one INSERT of the whole batch,
    which begins the transaction and, on PostgreSQL, is plain: no ``ON CONFLICT``, whose
    look into the unique index before each row cost the database a sixth of its part
    (``idp.db.insert_new``). Answered beneath Flask (``idp.oauth.direct``) or by Flask."""
    monkeypatch.setattr(app.extensions["idp.direct"], "enabled", beneath_flask)
    kiosk_id, _, token = factories.kiosk_token(client)
    bearer = {"Authorization": f"Bearer {token}"}
    kiosk = app.test_client()  # a kiosk: no cookies
    assert kiosk.post("/api/touch-events", json=touch_batch("warm", 1),
                      headers=bearer).status_code == 201
    with counted() as statements:
        response = kiosk.post("/api/touch-events", json=touch_batch("new", 100), headers=bearer)
    assert response.status_code == 201 and response.json == {"stored": 100, "duplicates": 0}
    assert [s.split()[0] for s in statements.protocol] == ["SELECT", "INSERT"], \
        statements.protocol
    assert " FROM tokens " in statements.protocol[0]
    assert statements.protocol[1].startswith("INSERT INTO touch_events ")
    assert ("ON CONFLICT" in statements.protocol[1]) is not is_postgres
    assert audit_append(statements.audit), statements.audit
    if is_postgres:
        assert statements.autocommit == [True, True]
        assert statements.in_transaction == [False, True]  # BEGIN sent before the INSERT


@pytest.mark.commits
@pytest.mark.parametrize("beneath_flask", [True, False])
def test_a_batch_meeting_stored_touches_is_stored_again_skipping_them(app, client, is_postgres,
                                                                     beneath_flask,
                                                                     monkeypatch):
    """Test that on PostgreSQL a batch whose plain INSERT meets touches already stored (a
    retried batch) is rolled back and stored again with ``ON CONFLICT DO NOTHING``: its
    new touches stored once, the others counted as duplicates, one audit entry, nothing
    of the failed INSERT left."""
    from sqlalchemy import func
    from sqlalchemy import select

    from idp.audit.models import AuditEvent
    from idp.kiosk.models import TouchEvent

    if not is_postgres:
        pytest.skip("the plain INSERT first is PostgreSQL's")
    monkeypatch.setattr(app.extensions["idp.direct"], "enabled", beneath_flask)
    kiosk_id, _, token = factories.kiosk_token(client)
    bearer = {"Authorization": f"Bearer {token}"}
    kiosk = app.test_client()
    assert kiosk.post("/api/touch-events", json=touch_batch("retried", 40),
                      headers=bearer).json == {"stored": 40, "duplicates": 0}
    with counted() as statements:
        response = kiosk.post("/api/touch-events", json=touch_batch("retried", 100),
                              headers=bearer)
    assert response.status_code == 201 and response.json == {"stored": 60, "duplicates": 40}
    assert [s.split()[0] for s in statements.protocol] == ["SELECT", "INSERT", "INSERT"]
    assert "ON CONFLICT" not in statements.protocol[1]
    assert statements.protocol[2].endswith("ON CONFLICT (client_id, event_id) DO NOTHING")
    assert audit_append(statements.audit), statements.audit
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TouchEvent)
                             .where(TouchEvent.client_id == kiosk_id)) == 100
    entries = db.session.scalars(select(AuditEvent.data).where(
        AuditEvent.client_id == kiosk_id, AuditEvent.tag == "kiosk:touch_events:store")
        .order_by(AuditEvent.id)).all()
    assert [(e["stored"], e["duplicates"]) for e in entries] == [(40, 0), (60, 40)]


@pytest.mark.commits
def test_a_batch_after_another_write_skips_stored_touches_at_once(app, client, is_postgres):
    """Test that a batch stored in a transaction that has already written goes straight to
    ``ON CONFLICT DO NOTHING`` (a rollback would undo that write), and that the earlier
    write stands; and that another integrity error (an unknown resident) is not taken for a
    duplicate."""
    from sqlalchemy import exc
    from sqlalchemy import select
    from sqlalchemy import update

    from idp.clients.models import Client
    from idp.db import reads_first
    from idp.kiosk.models import TouchEvent
    from idp.oauth.tokens import ClientState

    if not is_postgres:
        pytest.skip("the plain INSERT first is PostgreSQL's")
    kiosk_id, _, _ = factories.kiosk_token(client)
    kiosk = ClientState(kiosk_id, db.session.get(Client, kiosk_id).company_id, True)
    events = kiosks.validate_batch(touch_batch("after", 3))
    assert kiosks.store(kiosk, None, events) == (3, 0)
    db.session.commit()
    reads_first(db.session())
    db.session.execute(update(TouchEvent).where(TouchEvent.client_id == kiosk_id)
                       .values(target="map-south"))  # a write first
    with counted() as statements:
        assert kiosks.store(kiosk, None, events) == (0, 3)
    assert [s.split()[0] for s in statements.protocol] == ["INSERT"]
    assert statements.protocol[0].endswith("ON CONFLICT (client_id, event_id) DO NOTHING")
    db.session.commit()
    assert set(db.session.scalars(select(TouchEvent.target)
                                  .where(TouchEvent.client_id == kiosk_id))) == {"map-south"}
    reads_first(db.session())
    with pytest.raises(exc.IntegrityError, match="fk_touch_events_resident_id_residents"):
        kiosks.store(kiosk, "no-such-resident", kiosks.validate_batch(touch_batch("new", 3)))
    db.session.rollback()
