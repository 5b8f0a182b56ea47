"""Bad input is answered with the endpoint's own 4xx, never a 500 (idp/inputs.py).

NUL reached PostgreSQL (500 there only), deep JSON nesting made the parser raise
RecursionError, key lookups raised MissingKeyError, and bodies had no size limit.
Run under IDP_TEST_DATABASE_URL too.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func
from sqlalchemy import select

from idp.access.models import Token
from idp.extensions import db
from idp.keys.models import SigningKey
from idp.kiosk import service as kiosks
from tests import factories
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def kiosk(app, client):
    _, _, token = factories.kiosk_token(client)
    return {"Authorization": f"Bearer {token}"}


def _event(**extra) -> dict:
    return {"occurred_at": "2026-11-20T10:15:00+09:00", "target": "map", **extra}


# ---- JSON bodies -----------------------------------------------------------------


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deeply_nested_json_is_400_in_the_api_shape(client, kiosk, opening):
    """Test that thousands of nested arrays or objects are a 400 invalid_request, not a
    RecursionError (500)."""
    response = client.post("/api/touch-events", data=opening * 50000,
                           content_type="application/json", headers=kiosk)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert "nested" in response.json["error_description"]


def test_json_nested_beyond_the_depth_limit_is_400(client, kiosk):
    """Test that a body the parser reads but that nests 40 levels is refused too."""
    body = {"events": [_event(target="x")]}
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    body["events"][0]["target"] = deep
    response = client.post("/api/touch-events", json=body, headers=kiosk)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize("target", ["ma\x00p", "ma\ud800p", "x" * 8193])
def test_nul_surrogate_and_overlong_json_strings_are_400(client, kiosk, target):
    """Test that a JSON string with NUL, a lone surrogate or over max_input_length
    characters is a 400 invalid_request and stores nothing."""
    body = json.dumps({"events": [_event(target=target)]})  # ensure_ascii: \\u escapes
    response = client.post("/api/touch-events", data=body, content_type="application/json",
                           headers=kiosk)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    db.session.rollback()
    from idp.kiosk.models import TouchEvent
    assert db.session.scalar(select(func.count()).select_from(TouchEvent)) == 0


def test_nul_in_a_json_member_name_is_400(client, kiosk):
    """Test that a refused member name is not echoed back."""
    response = client.post("/api/touch-events", data='{"ev\\u0000ents": []}',
                           content_type="application/json", headers=kiosk)
    assert response.status_code == 400
    assert "\x00" not in response.text and "\\u0000" not in response.text


# ---- query and form values -------------------------------------------------------


@pytest.fixture
def rp(app):
    factories.resident()
    return factories.rp()


def _authorize(client, rp, **params):
    verifier, challenge = factories.pkce_pair()
    query = {"client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
             "response_type": "code", "scope": "openid email", "state": "st-1",
             "nonce": "n-1", "code_challenge": challenge, "code_challenge_method": "S256",
             **params}
    return client.get("/authorize", query_string=query)


@pytest.mark.parametrize("value", ["n\x00once", "n" * 8193])
def test_refused_nonce_redirects_invalid_request_with_state(client, rp, value):
    """Test that a NUL (500 on PostgreSQL before) or overlong nonce is invalid_request at
    the client's verified redirect URI, with state and iss (RFC 6749 §4.1.2.1, RFC 9207)."""
    response = _authorize(client, rp, nonce=value)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?")
    params = factories.query(location)
    assert params["error"] == "invalid_request"
    assert params["state"] == "st-1"
    assert params["iss"] == "http://localhost"
    assert "nonce" in params["error_description"]


@pytest.mark.parametrize("param", ["client_id", "redirect_uri", "state"])
def test_refused_client_redirect_uri_or_state_is_a_page(client, rp, param):
    """Test that a refused client_id, redirect_uri or state is a 400 page, never a redirect."""
    value = {"client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
             "state": "st"}[param] + "\x00"
    response = _authorize(client, rp, **{param: value})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"


def test_refused_parameter_with_unregistered_redirect_uri_is_a_page(client, rp):
    """Test that a refused nonce with a redirect URI the client did not register is a page."""
    response = _authorize(client, rp, nonce="\x00", redirect_uri="https://evil.example/cb")
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_nul_in_admin_sign_in_email_is_a_400_page(client, app):
    """Test that a NUL in the admin sign-in email (500 on PostgreSQL before) is a 400 page."""
    admin = enrolled_admin()
    response = AdminBrowser(client, admin).login(email="kanri\x00@consortium.example.jp")
    assert response.status_code == 400
    assert response.mimetype == "text/html"


def test_nul_in_resident_login_email_is_a_400_page(client, rp):
    page = client.get("/login")
    response = client.post("/login", data={"email": "hanako\x00@example.jp",
                                           "password": factories.PASSWORD,
                                           "csrf_token": factories.csrf(page.text)})
    assert response.status_code == 400
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect", "/device_authorization"])
def test_nul_and_overlong_form_values_at_protocol_endpoints_are_invalid_request(client, rp,
                                                                                path):
    """Test that protocol endpoints refuse NUL and overlong values with OAuth JSON."""
    for value in ("a\x00b", "a" * 8193):
        response = client.post(path, data={"token": value, "grant_type": "refresh_token",
                                           "refresh_token": value, "client_id": value},
                               auth=(rp.client_id, rp.client_secret))
        assert response.status_code == 400, response.text
        assert response.json["error"] == "invalid_request"


# ---- key lookups -----------------------------------------------------------------


def test_id_token_hint_before_any_signing_key_is_an_invalid_hint(client, app):
    """Test that /logout with an id_token_hint before any key exists is a 400 page
    (MissingKeyError, 500, before)."""
    assert db.session.scalar(select(func.count()).select_from(SigningKey)) == 0
    key = RSAKey.generate_key(2048, private=True)
    now = int(time.time())
    hint = jwt.encode({"alg": "RS256", "kid": "k1"},
                      {"iss": "http://localhost", "aud": "x", "sub": "s", "iat": now,
                       "exp": now + 60}, key)
    response = client.get("/logout", query_string={"id_token_hint": hint})
    assert response.status_code == 400
    assert response.mimetype == "text/html"


def test_client_assertion_for_a_client_without_keys_is_invalid_client(client, app):
    """Test that a client_assertion naming a client registered for client_secret_basic
    (no keys) is invalid_client (MissingKeyError, 500, before) and issues nothing."""
    rp = factories.rp(grant_types=["authorization_code", "client_credentials"])
    now = int(time.time())
    assertion = jwt.encode({"alg": "RS256", "kid": "k1"},
                           {"iss": rp.client_id, "sub": rp.client_id,
                            "aud": "http://localhost/token", "iat": now, "exp": now + 60,
                            "jti": factories.token(8)},
                           RSAKey.generate_key(2048, private=True))
    response = client.post("/token", data={"grant_type": "client_credentials",
                                           "client_assertion_type": ASSERTION_TYPE,
                                           "client_assertion": assertion})
    # The client is registered for client_secret_basic: 401 with its Basic challenge (§5.2).
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Token)) == 0


# ---- body size -------------------------------------------------------------------


def test_large_form_at_token_is_413_invalid_request(client, app):
    """Test that a body over max_body_protocol at /token is 413 invalid_request, and no
    token is issued even for a valid client (a 20 MB form was answered with one)."""
    company = factories.company("C社")
    row, secret, _ = kiosks.create_kiosk(company, "サイネージ", "北2条広場")
    kiosk_id = row.id
    db.session.commit()
    response = client.post("/token", data={"grant_type": "client_credentials",
                                           "scope": "touch_events", "padding": "x" * 70000},
                           auth=(kiosk_id, secret))
    assert response.status_code == 413
    assert response.json["error"] == "invalid_request"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Token)) == 0


def test_large_json_at_the_api_is_413_in_the_api_shape(client, kiosk):
    """Test that a body over max_body_api (a 4 MB batch was parsed before) is 413."""
    body = json.dumps({"events": [_event(target="x" * 200)] * 12000})
    assert len(body) > 2 * 1024 * 1024
    response = client.post("/api/touch-events", data=body, content_type="application/json",
                           headers=kiosk)
    assert response.status_code == 413
    assert response.json["error"] == "invalid_request"


def test_large_form_on_a_page_is_a_413_page(client, app):
    """Test that a form over max_body_page is a 413 HTML page."""
    response = client.post("/login", data={"email": "a@example.jp", "password": "x" * 300000})
    assert response.status_code == 413
    assert response.mimetype == "text/html"


def test_body_limits_follow_the_settings(app, client, settings_overrides):
    """Test that the endpoint classes read their own setting."""
    from idp import inputs
    assert inputs.endpoint_class("/token") == "protocol"
    assert inputs.endpoint_class("/.well-known/openid-configuration") == "protocol"
    assert inputs.endpoint_class("/api/touch-events") == "api"
    assert inputs.endpoint_class("/login") == "page"
    assert inputs.endpoint_class("/tokenx") == "page"
    assert urlsplit("http://localhost/").path == "/"


def test_nul_in_a_path_segment_is_a_400_page(client, app):
    """Test that a NUL in a path value (an admin page's client id) is refused like any
    other value, before a view could pass it to the database."""
    admin = enrolled_admin()
    assert AdminBrowser(client, admin).login().status_code == 303
    response = client.get("/admin/clients/mc_ab%00cd")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
