"""Introspection answered beneath Flask (``idp.oauth.direct``) answers exactly what Flask
answers, takes on only the common case, and hands everything else to Flask intact.

Each case sends the same request twice, with the direct answers on and off, and compares
status, headers (but the request id) and body; ``answered`` says whether the direct
layer answered it (``idp_direct_answers_total``)."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import update

from idp import metrics
from idp.access.models import DeviceCode
from idp.access.models import Token
from idp.clients import service as clients
from idp.clients.models import Client
from idp.consent import service as consent_service
from idp.extensions import db
from idp.oauth import tokens
from tests import factories
from tests.helpers.app import IsolatedClient
from tests.helpers.oauth import tokens_for

ANSWERED = metrics.DIRECT_ANSWERS.labels(endpoint="oauth.introspect")


@pytest.fixture
def rp():
    return factories.rp(scopes=["openid", "name", "email", "offline_access"])


@pytest.fixture
def resident():
    return factories.resident()


@pytest.fixture
def issued(client, rp, resident):
    return tokens_for(client, rp, scope="openid email offline_access")


@pytest.fixture
def rs(app):
    """A resource server's HTTP client: no cookies (the browser's ``client`` has some)."""
    app.test_client_class = IsolatedClient  # each request in a context of its own
    return app.test_client()


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def send(client, rp, body: str | None = None, *, token: str | None = None, **options):
    options.setdefault("headers", {}).setdefault("Authorization",
                                                   basic(rp.client_id, rp.client_secret))
    if body is None:
        body = f"token={token}"
    options.setdefault("content_type", "application/x-www-form-urlencoded")
    return client.post(options.pop("path", "/introspect"), data=body, **options)


def on_and_off(app, counter, request):
    """``request()`` with direct answers on, then off: both answers (same status and
    headers but the request id), and whether the direct layer answered the first."""
    layer = app.extensions["idp.direct"]
    before = counter._value.get()
    on = request()
    answered = counter._value.get() - before == 1
    layer.enabled = False
    try:
        off = request()
    finally:
        layer.enabled = True
    assert on.status_code == off.status_code
    assert headers(on) == headers(off)
    return on, off, answered


def both(app, client, rp, body=None, **options):
    """An introspection with direct answers on, then off: the answer (the same both
    times), and whether the direct layer answered."""
    on, off, answered = on_and_off(app, ANSWERED, lambda: send(client, rp, body, **options))
    assert on.get_data() == off.get_data()
    return on, answered


def headers(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name != "X-Request-ID"}


def warm(rs, rp, token: str) -> None:
    """The caller in this worker's client cache (the direct layer answers only for it)."""
    send(rs, rp, token=token)


def test_an_active_resident_token_is_answered_directly_as_flask_answers(app, rs, rp, issued):
    """Test that the common case is answered beneath Flask, with Flask's very answer."""
    warm(rs, rp, issued["access_token"])
    response, answered = both(app, rs, rp, token=issued["access_token"])
    assert answered and response.json["active"] is True
    assert response.json["scope"] == "openid email offline_access"
    assert response.headers["Content-Security-Policy"] and response.headers["Cache-Control"] \
        == "no-store"


def test_a_client_credentials_token_and_the_hint_are_answered_directly(app, client, rs, rp):
    """Test that a token without a resident, and ``token_type_hint=access_token``, are
    answered beneath Flask as Flask answers them."""
    backend = factories.rp(rp.company_id, grant_types=["client_credentials"],
                           scopes=["touch_events"], redirect_uris=None)
    token = client.post("/token", data={"grant_type": "client_credentials"},
                        auth=(backend.client_id, backend.client_secret)).json["access_token"]
    warm(rs, rp, token)
    response, answered = both(app, rs, rp, f"token={token}&token_type_hint=access_token")
    assert answered and response.json["active"] is True and "sub" not in response.json


def test_a_direct_answer_is_counted_and_logged_with_its_request_id(app, rs, rp, issued,
                                                                   caplog):
    """Test that a direct answer carries a request id, counts the request as Flask would
    and logs its line with that id and the client."""
    warm(rs, rp, issued["access_token"])
    requests = metrics.HTTP_REQUESTS.labels(endpoint="oauth.introspect", method="POST",
                                            status="200")
    before, counted = ANSWERED._value.get(), requests._value.get()
    with caplog.at_level(logging.INFO, logger="idp.request"):
        response = send(rs, rp, token=issued["access_token"])
    assert ANSWERED._value.get() == before + 1
    assert requests._value.get() == counted + 1
    line = next(r for r in caplog.records if r.name == "idp.request")
    assert (line.request_id, line.client_id, line.status, line.path) == (
        response.headers["X-Request-ID"], rp.client_id, 200, "/introspect")
    assert re.fullmatch(r"[0-9a-f]{32}", line.request_id)


@pytest.mark.parametrize("case", [
    "refresh token", "refresh hint", "unknown token", "no token", "wrong secret",
    "unknown client", "secret in the form", "query string", "repeated parameter",
    "unknown parameter", "percent-encoded client id", "not a form", "NUL in the token",
    "bearer instead of basic", "a cookie", "not UTF-8", "plain http",
])
def test_every_other_request_is_answered_by_flask(app, client, rs, rp, issued, case):
    """Test that the direct layer leaves every case but the common one to Flask, which
    answers it as it always did (same status, headers and body with the layer off)."""
    access, refresh_token = issued["access_token"], issued["refresh_token"]
    warm(rs, rp, access)
    options = {}
    body = f"token={access}"
    if case == "refresh token":
        body = f"token={refresh_token}"
    elif case == "refresh hint":
        body += "&token_type_hint=refresh_token"
    elif case == "unknown token":
        body = "token=no-such-token"
    elif case == "no token":
        body = "token_type_hint=access_token"
    elif case == "wrong secret":
        options["headers"] = {"Authorization": basic(rp.client_id, "not-the-secret")}
    elif case == "unknown client":
        options["headers"] = {"Authorization": basic("mc_NOSUCHCLIENT", rp.client_secret)}
    elif case == "secret in the form":  # client_secret_post: not this client's method
        body += f"&client_id={rp.client_id}&client_secret={rp.client_secret}"
        options["headers"] = {"Authorization": ""}
    elif case == "query string":
        options["query_string"] = "x=1"
    elif case == "repeated parameter":
        body += f"&token={access}"
    elif case == "unknown parameter":
        body += "&resource=https://rs.example.jp"
    elif case == "percent-encoded client id":
        options["headers"] = {"Authorization": basic(rp.client_id.replace("_", "%5F"),
                                                     rp.client_secret)}
    elif case == "not a form":
        options["content_type"] = "text/plain"
    elif case == "NUL in the token":
        body = f"token={access}%00"
    elif case == "bearer instead of basic":
        options["headers"] = {"Authorization": f"Bearer {access}"}
    elif case == "plain http":  # to a host that is not loopback: insecure_transport
        options["base_url"] = "http://id.example.jp"
    elif case == "not UTF-8":
        body = f"token={access}%ff"
    elif case == "a cookie":  # a browser's: Flask may refresh its session
        rs.set_cookie("machi_id_session", "x")
    _, answered = both(app, rs, rp, body, **options)
    assert not answered


@pytest.mark.parametrize("state", ["expired", "revoked", "consent withdrawn",
                                   "another company's", "client revoked"])
def test_a_token_that_is_not_active_is_answered_by_flask(app, client, rs, rp, resident,
                                                         issued, state):
    """Test that a token the full path reports inactive (or refuses the caller for) is
    left to Flask, whose answer stands."""
    access = issued["access_token"]
    caller = rp
    warm(rs, rp, access)
    if state == "revoked":
        db.session.execute(update(Token).values(revoked_at=dt.datetime.now(dt.UTC)))
    elif state == "consent withdrawn":
        consent_service.withdraw(resident.id, rp.client_id)
    elif state == "another company's":
        caller = factories.rp()
        warm(rs, caller, access)
    elif state == "client revoked":
        clients.revoke_client(rp.client_id)
    db.session.commit()
    if state == "expired":
        with freeze_time(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)):
            response, answered = both(app, rs, caller, token=access)
    else:
        response, answered = both(app, rs, caller, token=access)
    assert not answered
    assert response.status_code == 401 if state == "client revoked" else \
        response.json == {"active": False}


def test_a_failure_of_the_direct_answer_is_answered_by_flask(app, client, rs, rp, issued,
                                                              monkeypatch, caplog):
    """Test that an error inside the direct layer (here, its lookup) leaves the request
    to Flask with its body intact, and is logged."""
    warm(rs, rp, issued["access_token"])

    def broken():
        raise RuntimeError("lookup failed")

    monkeypatch.setattr(tokens, "state_lookup", broken)
    before = ANSWERED._value.get()
    with caplog.at_level(logging.WARNING, logger="idp.oauth.direct"):
        response = send(rs, rp, token=issued["access_token"])
    assert response.status_code == 200 and response.json["active"] is True
    assert ANSWERED._value.get() == before
    assert any("direct answer failed" in r.getMessage() for r in caplog.records)


# ---- client-credentials tokens ------------------------------------------------------

TOKENS = metrics.DIRECT_ANSWERS.labels(endpoint="oauth.token")


@pytest.fixture
def machine(rp):
    return factories.rp(rp.company_id, grant_types=["client_credentials"],
                        scopes=["touch_events", "sensor_counts"], redirect_uris=None)


def take(client, machine, body: str = "grant_type=client_credentials&scope=touch_events",
         **options):
    return send(client, machine, body, path="/token", **options)


def both_tokens(app, client, machine, body="grant_type=client_credentials&scope=touch_events",
                **options):
    """A token with direct answers on, then off: both answers, and whether the direct layer
    answered the first. The tokens differ; everything else must not."""
    on, off, answered = on_and_off(app, TOKENS,
                                   lambda: take(client, machine, body, **dict(options)))
    if on.status_code == 200:
        assert on.json["access_token"] != off.json["access_token"]
        assert {**on.json, "access_token": "-"} == {**off.json, "access_token": "-"}
    else:
        assert on.get_data() == off.get_data()
    return on, off, answered


def last_two_issued(client_id: str) -> list[tuple]:
    """The token rows and audit entries of the last two tokens issued to ``client_id``,
    without what differs by nature (ids, digests, families, times)."""
    from sqlalchemy import select

    from idp.audit.models import AuditEvent

    db.session.expire_all()
    rows = db.session.scalars(select(Token).where(Token.client_id == client_id)
                              .order_by(Token.id.desc()).limit(2)).all()
    entries = db.session.scalars(select(AuditEvent).where(
        AuditEvent.client_id == client_id, AuditEvent.tag == "oauth:token:issue")
        .order_by(AuditEvent.id.desc()).limit(2)).all()
    return [((t.grant_type, t.scope, t.resident_id, t.subject, t.code_id,
              t.refresh_token_digest, t.access_expires_at - t.issued_at),
             (e.actor, e.company_id, e.resident_id, e.ip, e.user_agent,
              {k: v for k, v in e.data.items() if k not in ("token_id", "family")}))
            for t, e in zip(rows, entries, strict=True)]


@pytest.mark.parametrize("body", [
    "grant_type=client_credentials&scope=touch_events",
    "grant_type=client_credentials&scope=touch_events%20sensor_counts",
    "grant_type=client_credentials",
    "grant_type=client_credentials&scope=touch_events%20%20touch_events",  # read as Flask does
])
def test_a_client_credentials_token_is_issued_directly_as_flask_issues_it(
        app, rs, machine, body):
    """Test that a client-credentials token is issued beneath Flask with Flask's answer
    (but the token), the same token row and the same audit entry, with the caller's
    address and user agent."""
    take(rs, machine)  # the client is cached now
    on, off, answered = both_tokens(app, rs, machine, body,
                                    headers={"User-Agent": "backend/1.0",
                                             "Authorization": basic(machine.client_id,
                                                                    machine.client_secret)})
    assert answered
    assert on.status_code == 200 and on.headers["Vary"] == "Origin"
    first, second = last_two_issued(machine.client_id)
    assert first == second
    assert first[1][3] is not None and first[1][4] == "backend/1.0"
    introspected = send(rs, machine, token=on.json["access_token"]).json
    assert introspected["active"] is True and introspected["scope"] == on.json.get("scope", "")


@pytest.mark.parametrize("case", [
    "a scope about residents", "a scope not registered", "an unknown scope", "a standard scope",
    "an empty scope", "another grant type", "an Origin", "extra parameter", "plain http",
    "wrong secret", "not registered for the grant",
])
def test_every_other_token_request_is_answered_by_flask(app, rs, rp, machine, case):
    """Test that the direct layer leaves every other token request to Flask, whose answer
    stands."""
    take(rs, machine)
    who, body, options = machine, "grant_type=client_credentials&scope=touch_events", {}
    if case == "a scope about residents":
        body = "grant_type=client_credentials&scope=name"
    elif case == "a scope not registered":
        body = "grant_type=client_credentials&scope=registered_data"
    elif case == "an unknown scope":
        body = "grant_type=client_credentials&scope=nope"
    elif case == "a standard scope":
        body = "grant_type=client_credentials&scope=profile"
    elif case == "an empty scope":
        body = "grant_type=client_credentials&scope="
    elif case == "another grant type":
        body = "grant_type=refresh_token&refresh_token=x"
    elif case == "an Origin":
        options["headers"] = {"Origin": "https://rp.example.jp",
                              "Authorization": basic(machine.client_id, machine.client_secret)}
    elif case == "extra parameter":
        body += "&audience=x"
    elif case == "plain http":  # to a host that is not loopback: insecure_transport
        options["base_url"] = "http://id.example.jp"
    elif case == "wrong secret":
        options["headers"] = {"Authorization": basic(machine.client_id, "guess")}
    elif case == "not registered for the grant":
        who = rp
        take(rs, rp)
    *_, answered = both_tokens(app, rs, who, body, **options)
    assert not answered


@pytest.mark.parametrize("settings_overrides", [{"token_rate_limit": "3 per minute"}])
def test_the_rate_limit_counts_each_direct_token_once(app, rs, machine, monkeypatch,
                                                      settings_overrides):
    """Test that a token request counts once against the client's limit, whether the
    direct layer answers it or hands it to Flask after counting it (here: as if the
    epoch had moved when it wrote), and that the request over the limit gets Flask's 429."""
    from idp.oauth import tokens

    assert take(rs, machine).status_code == 200  # Flask: the client is cached now
    with monkeypatch.context() as patched:
        patched.setattr(tokens, "issue_client_credentials", lambda *args: None)
        assert take(rs, machine).status_code == 200  # counted by the layer, issued by Flask
    assert take(rs, machine).status_code == 200
    refused = take(rs, machine)
    assert refused.status_code == 429 and refused.json["error"] == "too_many_requests"


# ---- device polls --------------------------------------------------------------------

GRANT = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"


@pytest.fixture
def kiosk(app):
    from idp.kiosk import service as kiosks

    company = factories.company("C社")
    row, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条西4丁目 交差点広場")
    kiosk = factories.RP(row.id, secret, company, redirect_uri="")
    db.session.commit()
    return kiosk


def pending_codes(rs, kiosk, count: int = 2) -> list[str]:
    from tests.helpers.device import authorize

    return [authorize(rs, kiosk)["device_code"] for _ in range(count)]


def poll_on_and_off(app, rs, kiosk, on_code: str, off_code: str, **options):
    """A poll of ``on_code`` with direct answers on, then of ``off_code`` (a code in the
    same state) with them off: both answers (the same status, headers but the request
    id, and body), both codes' rows after (interval, poll time), and whether the direct
    layer answered the first. (One code polled twice would be too soon the second time.)"""
    layer = app.extensions["idp.direct"]
    extra = options.pop("extra", "")
    before = TOKENS._value.get()
    on = send(rs, kiosk, f"grant_type={GRANT}&device_code={on_code}{extra}", path="/token",
              **dict(options))
    answered = TOKENS._value.get() - before == 1
    layer.enabled = False
    try:
        off = send(rs, kiosk, f"grant_type={GRANT}&device_code={off_code}{extra}",
                   path="/token", **dict(options))
    finally:
        layer.enabled = True
    assert (on.status_code, headers(on)) == (off.status_code, headers(off))
    if on.status_code != 200:  # (tokens differ by nature)
        assert on.get_data() == off.get_data()
    return on, [code_state(on_code), code_state(off_code)], answered


def code_state(device_code: str) -> tuple | None:
    from sqlalchemy import select

    from idp import secrets

    db.session.expire_all()
    row = db.session.scalar(select(DeviceCode).where(
        DeviceCode.device_code_digest == secrets.digest(device_code)))
    return None if row is None else (row.status, row.interval, row.last_polled_at,
                                     row.consumed_at)


@pytest.mark.parametrize("polled_before", [None, 2, 6])
def test_a_pending_poll_is_answered_directly_as_flask_answers(app, rs, kiosk, is_postgres,
                                                              polled_before):
    """Test that a kiosk's poll of a pending code, the first one, one within its interval
    (slow_down, the interval grown by 5 s) and one after it, is answered beneath Flask on
    PostgreSQL with Flask's very answer and the same row after; on SQLite by Flask."""
    with freeze_time("2026-12-04 03:00:00") as frozen:
        codes = pending_codes(rs, kiosk)
        if polled_before is not None:
            for code in codes:
                send(rs, kiosk, f"grant_type={GRANT}&device_code={code}", path="/token")
            frozen.tick(dt.timedelta(seconds=polled_before))
        else:
            take(rs, kiosk, f"grant_type={GRANT}&device_code=unknown")  # the kiosk is cached
        on, states, answered = poll_on_and_off(app, rs, kiosk, *codes)
    assert answered == is_postgres
    assert on.status_code == 400 and on.headers["Cache-Control"] == "no-store"
    expected = "slow_down" if polled_before == 2 else "authorization_pending"
    assert on.json == {"error": expected}
    assert states[0] == states[1]
    assert states[0][1] == (10 if polled_before == 2 else 5)
    assert states[0][2] == dt.datetime(2026, 12, 4, 3, 0, polled_before or 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("case", [
    "approved", "denied", "expired", "unknown", "another kiosk's", "consumed", "an Origin",
    "extra parameter", "plain http", "wrong secret", "not registered for the grant",
])
def test_every_other_poll_is_answered_by_flask(app, client, rs, rp, kiosk, case):
    """Test that the direct layer leaves every other poll to Flask, whose answer stands,
    and writes nothing of its own."""
    from idp.kiosk import service as kiosks
    from tests.helpers.device import approve
    from tests.helpers.device import authorize

    factories.resident()
    codes = pending_codes(rs, kiosk)
    take(rs, kiosk, f"grant_type={GRANT}&device_code=unknown")  # the kiosk is cached
    who, options = kiosk, {}
    if case in ("approved", "denied", "consumed"):
        # Two codes, each decided by the resident on the phone.
        fresh = [authorize(rs, kiosk) for _ in range(2)]
        for i, body in enumerate(fresh):
            approve(client, body["user_code"], "deny" if case == "denied" else "allow",
                    login=i == 0)
        codes = [body["device_code"] for body in fresh]
        if case == "consumed":
            for code in codes:
                assert send(rs, kiosk, f"grant_type={GRANT}&device_code={code}",
                            path="/token").status_code == 200
    elif case == "expired":
        db.session.execute(update(DeviceCode).values(expires_at=func.now()))
        db.session.commit()
    elif case == "unknown":
        codes = ["unknown-1", "unknown-1"]
    elif case == "another kiosk's":
        row, secret, _ = kiosks.create_kiosk(factories.company("D社"), "別の端末", "大通")
        db.session.commit()
        other = factories.RP(row.id, secret, kiosk.company_id, redirect_uri="")
        codes = pending_codes(rs, other)
    elif case == "an Origin":
        options["headers"] = {"Origin": "https://kiosk.example.jp",
                              "Authorization": basic(kiosk.client_id, kiosk.client_secret)}
    elif case == "extra parameter":
        options["extra"] = f"&client_id={kiosk.client_id}"
    elif case == "plain http":
        options["base_url"] = "http://id.example.jp"
    elif case == "wrong secret":
        options["headers"] = {"Authorization": basic(kiosk.client_id, "guess")}
    elif case == "not registered for the grant":
        who = rp
        take(rs, rp)
    with freeze_time(dt.datetime.now(dt.UTC)):  # both polls at the same instant
        on, states, answered = poll_on_and_off(app, rs, who, *codes, **options)
    assert not answered
    assert (on.status_code == 200) == (case == "approved")
    if case not in ("approved", "consumed"):  # (consumed at different times)
        assert states[0] == states[1]


@pytest.mark.parametrize("settings_overrides", [{"token_rate_limit": "3 per minute"}])
def test_the_rate_limit_counts_each_direct_poll_once(app, rs, kiosk, is_postgres,
                                                     settings_overrides):
    """Test that a kiosk's poll counts once against its token-endpoint limit, whether the
    direct layer answers it (PostgreSQL) or Flask does, and that the poll over the limit
    gets Flask's 429."""
    # Frozen at the real time: the limiter's in-memory storage expires its windows on a
    # timer thread, which freezegun leaves on the real clock (it ignores ``threading``);
    # a window that began at a frozen instant hours past would be expired under the test.
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        code = pending_codes(rs, kiosk, 1)[0]
        answers, before = [], TOKENS._value.get()
        for _ in range(4):
            answers.append(send(rs, kiosk, f"grant_type={GRANT}&device_code={code}",
                                path="/token"))
            frozen.tick(dt.timedelta(seconds=6))
    assert [a.status_code for a in answers] == [400, 400, 400, 429]
    assert answers[-1].json["error"] == "too_many_requests"
    # The kiosk is cached by its device authorization request: on PostgreSQL the layer
    # answers the three polls within the limit, and Flask the one over it.
    assert TOKENS._value.get() - before == (3 if is_postgres else 0)


# ---- UserInfo -----------------------------------------------------------------------

USERINFO = metrics.DIRECT_ANSWERS.labels(endpoint="oauth.userinfo")


def read_userinfo(client, access_token: str, **options):
    headers = options.pop("headers", {"Authorization": f"Bearer {access_token}"})
    return client.open(options.pop("path", "/userinfo"), method=options.pop("method", "GET"),
                       headers=headers, **options)


def both_userinfo(app, client, access_token, **options):
    """UserInfo with direct answers on, then off: the answer (the same both times), and
    whether the direct layer answered."""
    on, off, answered = on_and_off(app, USERINFO,
                                   lambda: read_userinfo(client, access_token, **dict(options)))
    assert on.get_data() == off.get_data()
    return on, answered


def test_userinfo_is_answered_directly_as_flask_answers(app, rs, issued):
    """Test that a repeated UserInfo call is answered beneath Flask with Flask's answer."""
    read_userinfo(rs, issued["access_token"])  # the release is recorded now
    response, answered = both_userinfo(app, rs, issued["access_token"])
    assert answered and response.json["email"] == "hanako@example.jp"
    assert response.headers["Vary"] == "Origin"


def test_a_first_userinfo_call_records_its_release_as_flask_does(app, client, rs, rp,
                                                                 resident):
    """Test that the first call of a token, answered beneath Flask, records the release
    (the token's mark and the audit entry) as the first call answered by Flask does."""
    from sqlalchemy import select

    from idp.audit.models import AuditEvent

    first = tokens_for(client, rp, scope="openid email offline_access")["access_token"]
    second = tokens_for(client, rp, scope="openid email offline_access")["access_token"]
    before = USERINFO._value.get()
    on = read_userinfo(rs, first)
    assert USERINFO._value.get() == before + 1
    layer = app.extensions["idp.direct"]
    layer.enabled = False
    try:
        off = read_userinfo(rs, second)
    finally:
        layer.enabled = True
    assert on.get_data() == off.get_data() and headers(on) == headers(off)
    db.session.expire_all()
    entries = db.session.scalars(select(AuditEvent).where(
        AuditEvent.tag == "oauth:claims:release", AuditEvent.client_id == rp.client_id)
        .order_by(AuditEvent.id.desc()).limit(2)).all()
    assert len(entries) == 2 and entries[0].data == entries[1].data
    assert entries[0].data["channel"] == "userinfo"
    marks = db.session.scalars(select(Token.released_claims).where(
        Token.client_id == rp.client_id).order_by(Token.id.desc()).limit(2)).all()
    assert marks[0] is not None and marks[0] == marks[1]
    # The direct answer's release is recorded: its next call records nothing more.
    releases = select(func.count()).select_from(AuditEvent).where(
        AuditEvent.tag == "oauth:claims:release", AuditEvent.client_id == rp.client_id)
    recorded = db.session.scalar(releases)
    assert read_userinfo(rs, first).status_code == 200
    db.session.expire_all()
    assert db.session.scalar(releases) == recorded


@pytest.mark.parametrize("case", [
    "a query string", "an Origin", "a cookie", "POST", "two tokens", "unknown token",
    "client credentials token", "no openid", "expired", "revoked", "consent withdrawn",
    "plain http",
])
def test_every_other_userinfo_call_is_answered_by_flask(app, client, rs, rp, resident,
                                                        issued, case):
    """Test that the direct layer leaves every other UserInfo call to Flask, whose answer
    stands."""
    access = issued["access_token"]
    read_userinfo(rs, access)
    options = {}
    if case == "a query string":
        options["query_string"] = "x=1"
    elif case == "an Origin":
        options["headers"] = {"Authorization": f"Bearer {access}",
                              "Origin": "https://rp.example.jp"}
    elif case == "a cookie":
        rs.set_cookie("machi_id_session", "x")
    elif case == "POST":
        options["method"] = "POST"
    elif case == "two tokens":
        options["headers"] = {"Authorization": f"Bearer {access} {access}"}
    elif case == "unknown token":
        access = "no-such-token"
    elif case == "plain http":  # to a host that is not loopback: insecure_transport
        options["base_url"] = "http://id.example.jp"
    elif case == "client credentials token":
        machine = factories.rp(rp.company_id, grant_types=["client_credentials"],
                               scopes=["touch_events"], redirect_uris=None)
        access = take(rs, machine).json["access_token"]
    elif case == "no openid":
        access = tokens_for(client, rp, scope="email")["access_token"]
    elif case == "revoked":
        db.session.execute(update(Token).values(revoked_at=dt.datetime.now(dt.UTC)))
    elif case == "consent withdrawn":
        consent_service.withdraw(resident.id, rp.client_id)
    db.session.commit()
    if case == "expired":
        with freeze_time(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)):
            _, answered = both_userinfo(app, rs, access, **options)
    else:
        _, answered = both_userinfo(app, rs, access, **options)
    assert not answered


def test_an_endpoint_with_a_flask_limiter_limit_is_answered_by_flask(app, rs, rp, issued,
                                                                    monkeypatch):
    """Test that the direct layer leaves an endpoint Flask-Limiter has a limit for (a
    default or application limit, or one decorated on the view) to Flask, which checks it."""
    from idp.extensions import UNLIMITED

    warm(rs, rp, issued["access_token"])
    monkeypatch.setitem(app.extensions, UNLIMITED,
                        app.extensions[UNLIMITED] - {"oauth.introspect"})
    _, answered = both(app, rs, rp, token=issued["access_token"])
    assert not answered


# ---- touch events ---------------------------------------------------------------------

TOUCHES = metrics.DIRECT_ANSWERS.labels(endpoint="kiosk_api.touch_events")


MOMENT = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).replace(microsecond=0)


def touches(tag: str, count: int = 3, **event) -> dict:
    """A batch of ``count`` touches at this module's moment (minutes ago), with event ids
    ``tag-0``…"""
    return {"events": [{"occurred_at": MOMENT.isoformat(), "target": f"map-{i}",
                        "event_id": f"{tag}-{i}", **event} for i in range(count)]}


def post_touches(client, token: str | None, batch, **options):
    headers = options.pop("headers", {"Authorization": f"Bearer {token}"})
    if isinstance(batch, dict):
        return client.post(options.pop("path", "/api/touch-events"), json=batch,
                           headers=headers, **options)
    return client.post(options.pop("path", "/api/touch-events"), data=batch, headers=headers,
                       content_type=options.pop("content_type", "application/json"), **options)


def touch_on_and_off(app, rs, token, on_batch, off_batch, **options):
    """``on_batch`` posted with direct answers on, then ``off_batch`` (the same but its
    event ids) with them off: both answers (the same status, headers but the request id,
    and body), and whether the direct layer answered the first."""
    layer = app.extensions["idp.direct"]
    before = TOUCHES._value.get()
    on = post_touches(rs, token, on_batch, **dict(options))
    answered = TOUCHES._value.get() - before == 1
    layer.enabled = False
    try:
        off = post_touches(rs, token, off_batch, **dict(options))
    finally:
        layer.enabled = True
    assert (on.status_code, headers(on), on.get_data()) == \
        (off.status_code, headers(off), off.get_data())
    return on, answered


def stored_touches(client_id: str, tag: str) -> list[tuple]:
    """What a batch tagged ``tag`` stored: its rows but ids, event ids and times of
    arrival."""
    from sqlalchemy import select

    from idp.kiosk.models import TouchEvent

    db.session.expire_all()
    rows = db.session.execute(
        select(TouchEvent.client_id, TouchEvent.resident_id, TouchEvent.occurred_at,
               TouchEvent.target).where(TouchEvent.client_id == client_id,
                                 TouchEvent.event_id.like(f"{tag}-%"))
        .order_by(TouchEvent.target)).all()
    return [tuple(row) for row in rows]


def last_touch_entries(client_id: str) -> list[tuple]:
    from sqlalchemy import select

    from idp.audit.models import AuditEvent

    entries = db.session.scalars(select(AuditEvent).where(
        AuditEvent.client_id == client_id, AuditEvent.tag == "kiosk:touch_events:store")
        .order_by(AuditEvent.id.desc()).limit(2)).all()
    return [(e.actor, e.company_id, e.resident_id, e.data) for e in entries]


@pytest.fixture
def kiosk_token(client):
    """(kiosk client id, its client-credentials ``touch_events`` token)."""
    kiosk_id, _, token = factories.kiosk_token(client)
    return kiosk_id, token


def test_a_batch_of_touches_is_stored_directly_as_flask_stores_it(app, rs, kiosk_token):
    """Test that a kiosk's valid batch is stored beneath Flask with Flask's very answer,
    the same rows and the same audit entry."""
    kiosk_id, token = kiosk_token
    on, answered = touch_on_and_off(app, rs, token, touches("on", 5), touches("off", 5))
    assert answered
    assert on.status_code == 201 and on.json == {"stored": 5, "duplicates": 0}
    assert on.headers["Content-Type"] == "application/json"
    assert on.headers["Content-Security-Policy"]
    assert stored_touches(kiosk_id, "on") == stored_touches(kiosk_id, "off")
    assert len(stored_touches(kiosk_id, "on")) == 5
    first, second = last_touch_entries(kiosk_id)
    assert first == second


def test_a_batch_repeating_stored_touches_is_answered_directly_with_its_duplicates(
        app, rs, kiosk_token):
    """Test that a retried batch counts its duplicates beneath Flask as Flask does."""
    kiosk_id, token = kiosk_token
    for tag in ("on", "off"):
        assert post_touches(rs, token, touches(tag, 2)).status_code == 201
    on, answered = touch_on_and_off(app, rs, token, touches("on", 4), touches("off", 4))
    assert answered and on.json == {"stored": 2, "duplicates": 2}
    assert stored_touches(kiosk_id, "on") == stored_touches(kiosk_id, "off")


def test_a_resident_s_batch_within_their_session_is_answered_directly(app, client, rs):
    """Test that the touches of a resident's device-flow token, within their session at
    the kiosk, are stored beneath Flask against the resident, as Flask stores them."""
    from idp.kiosk import service as kiosks
    from tests.helpers.device import approve
    from tests.helpers.device import authorize
    from tests.helpers.device import poll

    factories.resident()
    row, secret, _ = kiosks.create_kiosk(factories.company("C社"), "サイネージ", "北2条広場")
    db.session.commit()
    kiosk = factories.RP(row.id, secret, row.company_id, redirect_uri="")
    body = authorize(client, kiosk)
    approve(client, body["user_code"])
    token = poll(client, kiosk, body["device_code"]).json["access_token"]
    now = dt.datetime.now(dt.UTC).isoformat()
    on, answered = touch_on_and_off(app, rs, token, touches("on", 2, occurred_at=now),
                                    touches("off", 2, occurred_at=now))
    assert answered and on.status_code == 201
    rows = stored_touches(kiosk.client_id, "on")
    assert rows == stored_touches(kiosk.client_id, "off")
    assert rows[0][1] is not None  # against the resident
    assert last_touch_entries(kiosk.client_id)[0] == last_touch_entries(kiosk.client_id)[1]


@pytest.mark.parametrize("case", [
    "not JSON", "a charset", "malformed JSON", "null", "too deep", "NUL", "lone surrogate",
    "overlong",
    "unknown member", "in the future", "no events", "repeated event id", "no token",
    "unknown token", "no touch_events scope", "an Origin", "a query string", "plain http",
    "a cookie",
])
def test_every_other_batch_is_answered_by_flask(app, rs, kiosk_token, issued, case):
    """Test that the direct layer leaves every other batch to Flask, whose answer stands,
    and stores nothing of its own."""
    kiosk_id, token = kiosk_token
    on_batch, off_batch, options = touches("on"), touches("off"), {}
    if case == "not JSON":
        options["content_type"] = "text/plain"
        on_batch = off_batch = '{"events": []}'
    elif case == "a charset":
        options["content_type"] = "application/json; charset=utf-8"
        on_batch, off_batch = (app.json.dumps(b) for b in (on_batch, off_batch))
    elif case == "malformed JSON":
        on_batch = off_batch = '{"events": ['
    elif case == "null":
        on_batch = off_batch = "null"
    elif case == "too deep":
        on_batch = off_batch = '{"events": ' + "[" * 40 + "]" * 40 + "}"
    elif case == "NUL":
        on_batch, off_batch = touches("on", target="a\x00b"), touches("off", target="a\x00b")
    elif case == "lone surrogate":  # sent escaped: \ud800
        on_batch, off_batch = touches("on", target="a\ud800"), touches("off", target="a\ud800")
    elif case == "overlong":
        on_batch, off_batch = touches("on", target="x" * 5000), touches("off", target="x" * 5000)
    elif case == "unknown member":
        on_batch, off_batch = touches("on", place="x"), touches("off", place="x")
    elif case == "in the future":
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
        on_batch, off_batch = touches("on", occurred_at=later), touches("off", occurred_at=later)
    elif case == "no events":
        on_batch = off_batch = {"events": []}
    elif case == "repeated event id":
        on_batch, off_batch = touches("on", event_id="same"), touches("off", event_id="same")
    elif case == "no token":
        options["headers"] = {}
    elif case == "unknown token":
        token = "not-a-token"
    elif case == "no touch_events scope":
        token = issued["access_token"]
    elif case == "an Origin":
        options["headers"] = {"Authorization": f"Bearer {token}",
                              "Origin": "https://kiosk.example.jp"}
    elif case == "a query string":
        options["path"] = "/api/touch-events?x=1"
    elif case == "plain http":
        options["base_url"] = "http://id.example.jp"
    elif case == "a cookie":
        rs.set_cookie("session", "x", domain="localhost")
    on, answered = touch_on_and_off(app, rs, token, on_batch, off_batch, **options)
    assert not answered


@pytest.mark.parametrize("state", ["revoked", "expired", "kiosk revoked", "company suspended"])
def test_a_kiosk_token_no_longer_good_is_answered_by_flask(app, rs, kiosk_token, state):
    """Test that the direct layer, which reads a kiosk's token as values (``TokenState``),
    leaves a revoked or expired token, a revoked kiosk and a suspended company to Flask,
    whose 401 stands, and that nothing is stored."""
    kiosk_id, token = kiosk_token
    assert post_touches(rs, token, touches("warm", 1)).status_code == 201
    if state == "revoked":
        db.session.execute(update(Token).where(Token.client_id == kiosk_id)
                           .values(revoked_at=dt.datetime.now(dt.UTC)))
    elif state == "kiosk revoked":
        clients.revoke_client(kiosk_id)
    elif state == "company suspended":
        clients.suspend_company(db.session.get(Client, kiosk_id).company_id)
    db.session.commit()
    if state == "expired":
        with freeze_time(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)):
            on, answered = touch_on_and_off(app, rs, token, touches("on"), touches("off"))
    else:
        on, answered = touch_on_and_off(app, rs, token, touches("on"), touches("off"))
    assert not answered
    assert on.status_code == 401 and "invalid_token" in on.headers["WWW-Authenticate"]
    assert stored_touches(kiosk_id, "on") == stored_touches(kiosk_id, "off") == []


def test_a_resident_s_batch_after_their_session_ended_is_answered_by_flask(app, client, rs):
    """Test that a batch after the resident's session at the kiosk ended (idle) goes on to
    Flask, which refuses it and ends the session (their token then dies)."""
    from idp.kiosk import service as kiosks
    from tests.helpers.device import approve
    from tests.helpers.device import authorize
    from tests.helpers.device import poll

    factories.resident()
    row, secret, _ = kiosks.create_kiosk(factories.company("C社"), "サイネージ", "北2条広場")
    db.session.commit()
    kiosk = factories.RP(row.id, secret, row.company_id, redirect_uri="")
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        body = authorize(client, kiosk)
        approve(client, body["user_code"])
        token = poll(client, kiosk, body["device_code"]).json["access_token"]
        frozen.tick(dt.timedelta(seconds=150))  # past the 120 s idle timeout
        late = dt.datetime.now(dt.UTC).isoformat()
        before = TOUCHES._value.get()
        response = post_touches(rs, token, touches("late", 1, occurred_at=late))
    assert TOUCHES._value.get() == before
    assert response.status_code == 400 and response.json["session_ended"] == "idle"
    assert post_touches(rs, token, touches("later", 1)).status_code == 401


def test_a_batch_stored_directly_stands_when_waking_the_outbox_fails(app, rs, kiosk_token,
                                                                     monkeypatch, caplog):
    """Test that once a direct answer has committed, a failure after it (waking the
    outbox) neither hands the request to Flask, which would store the batch again, nor
    changes the answer."""
    from idp.outbox import service as outbox

    kiosk_id, token = kiosk_token

    def fail(app):
        raise RuntimeError("outbox down")

    monkeypatch.setattr(outbox, "deliver_enqueued", fail)
    before = TOUCHES._value.get()
    with caplog.at_level(logging.WARNING, logger="idp.oauth.direct"):
        response = post_touches(rs, token, {"events": [{k: v for k, v in e.items()
                                                         if k != "event_id"}
                                                        for e in touches("x", 2)["events"]]})
    assert response.status_code == 201 and response.json == {"stored": 2, "duplicates": 0}
    assert TOUCHES._value.get() == before + 1
    assert "waking the outbox failed" in caplog.text
    from sqlalchemy import select

    from idp.kiosk.models import TouchEvent

    db.session.expire_all()
    assert len(db.session.scalars(select(TouchEvent).where(
        TouchEvent.client_id == kiosk_id)).all()) == 2
