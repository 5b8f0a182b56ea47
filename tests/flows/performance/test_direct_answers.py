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
from sqlalchemy import update

from idp import metrics
from idp.access.models import Token
from idp.clients import service as clients
from idp.consent import service as consent_service
from idp.extensions import db
from idp.oauth import direct
from tests import factories
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


def both(app, client, rp, body=None, **options):
    """The answer with direct answers on, then off, and whether the direct layer answered."""
    layer = app.extensions["idp.direct"]
    before = ANSWERED._value.get()
    on = send(client, rp, body, **options)
    answered = ANSWERED._value.get() - before
    layer.enabled = False
    try:
        off = send(client, rp, body, **options)
    finally:
        layer.enabled = True
    assert on.status_code == off.status_code
    assert on.get_data() == off.get_data()
    assert headers(on) == headers(off)
    return on, answered == 1


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
    "bearer instead of basic", "a cookie",
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

    monkeypatch.setattr(direct, "_lookup", broken)
    before = ANSWERED._value.get()
    with caplog.at_level(logging.WARNING, logger="idp.oauth.direct"):
        response = send(rs, rp, token=issued["access_token"])
    assert response.status_code == 200 and response.json["active"] is True
    assert ANSWERED._value.get() == before
    assert any("direct answer failed" in r.getMessage() for r in caplog.records)
