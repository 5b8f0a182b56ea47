"""Token endpoint, authorization_code grant (RFC 6749 §4.1.3-4, RFC 7636 §4.6, OIDC Core §3.1.3)."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from freezegun import freeze_time
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey
from sqlalchemy import select

from idp.access.models import Token
from idp.audit.models import AuditEvent
from idp.extensions import db
from tests import factories
from tests.factories import Browser
from tests.helpers.oauth import jwt_claims


@pytest.fixture
def rp(app):
    factories.resident()
    return factories.rp()


def code_and_verifier(client, rp, scope="openid name email offline_access", **params):
    verifier, challenge = factories.pkce_pair()
    result = Browser(client).code_flow(rp, scope=scope, code_challenge=challenge,
                                       code_challenge_method="S256", **params)
    return result["code"], verifier


def introspect(client, rp, token):
    return client.post("/introspect", data={"token": token},
                       auth=(rp.client_id, rp.client_secret)).json


def test_code_exchange_returns_tokens_and_id_token(client, rp):
    """Test that a valid code with its verifier yields access, refresh and ID tokens."""
    code, verifier = code_and_verifier(client, rp)
    response = factories.exchange(client, rp, code, verifier)
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert set(body["scope"].split()) == {"openid", "name", "email", "offline_access"}
    assert body["refresh_token"] and body["id_token"] and body["expires_in"] == 3600
    assert response.headers["Cache-Control"] == "no-store"


def test_id_token_is_signed_and_carries_consented_claims(client, rp):
    """Test that the ID token verifies against JWKS and carries only consented claims."""
    code, verifier = code_and_verifier(client, rp, scope="openid email", nonce="abc")
    body = factories.exchange(client, rp, code, verifier).json
    keyset = KeySet.import_key_set(client.get("/jwks.json").json)
    token = jwt.decode(body["id_token"], keyset)
    claims = token.claims
    assert token.header["alg"] == "RS256" and token.header["kid"]
    assert claims["iss"] == "http://localhost"
    assert claims["aud"] == rp.client_id
    assert claims["nonce"] == "abc"
    assert claims["email"] == "hanako@example.jp" and claims["email_verified"] is True
    assert "name" not in claims and "birthdate" not in claims
    assert claims["exp"] > claims["iat"] and "auth_time" not in claims
    assert claims["at_hash"]


@pytest.mark.parametrize(("params", "expected"), [
    ({}, False),
    ({"max_age": "600"}, True),
    ({"claims": json.dumps({"id_token": {"auth_time": {"essential": True}}})}, True),
    ({"claims": json.dumps({"userinfo": {"auth_time": None}})}, False),
])
def test_auth_time_only_when_the_request_needs_it(client, rp, params, expected):
    """Test that the ID token carries auth_time (the session's sign-in time) only when
    max_age was sent or the claims parameter asks for it (OIDC Core §2): the same
    sign-in time at two companies would let them match the resident."""
    with freeze_time("2026-05-01 09:00:00") as clock:
        Browser(client).login()
        clock.tick(dt.timedelta(minutes=7))
        code, verifier = code_and_verifier(client, rp, scope="openid", **params)
        claims = jwt_claims(factories.exchange(client, rp, code, verifier).json["id_token"])
    assert ("auth_time" in claims) is expected
    if expected:
        signed_in = int(dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC).timestamp())
        assert claims["auth_time"] == signed_in == claims["iat"] - 420


def test_no_refresh_token_without_offline_access(client, rp):
    """Test that a refresh token is issued only with offline_access."""
    code, verifier = code_and_verifier(client, rp, scope="openid email")
    assert "refresh_token" not in factories.exchange(client, rp, code, verifier).json


def test_second_redemption_is_invalid_grant_and_revokes_tokens(client, rp):
    """Test that a replayed code answers invalid_grant and kills the first tokens."""
    code, verifier = code_and_verifier(client, rp)
    first = factories.exchange(client, rp, code, verifier).json
    replay = factories.exchange(client, rp, code, verifier)
    assert replay.status_code == 400 and replay.json["error"] == "invalid_grant"
    assert introspect(client, rp, first["access_token"]) == {"active": False}
    assert introspect(client, rp, first["refresh_token"]) == {"active": False}
    refreshed = client.post("/token", data={"grant_type": "refresh_token",
                                            "refresh_token": first["refresh_token"]},
                            auth=(rp.client_id, rp.client_secret))
    assert refreshed.json["error"] == "invalid_grant"
    tags = db.session.scalars(select(AuditEvent.tag)).all()
    assert "oauth:code:replay" in tags


def test_replay_also_revokes_tokens_refreshed_from_the_code(client, rp):
    """Test that replay revocation reaches tokens rotated from the code's first token."""
    code, verifier = code_and_verifier(client, rp)
    first = factories.exchange(client, rp, code, verifier).json
    second = client.post("/token", data={"grant_type": "refresh_token",
                                         "refresh_token": first["refresh_token"]},
                         auth=(rp.client_id, rp.client_secret)).json
    factories.exchange(client, rp, code, verifier)
    assert introspect(client, rp, second["access_token"]) == {"active": False}


def test_expired_code_is_invalid_grant(client, rp):
    """Test that a code older than authorization_code_ttl is refused."""
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        code, verifier = code_and_verifier(client, rp)
        frozen.tick(dt.timedelta(seconds=301))
        response = factories.exchange(client, rp, code, verifier)
    assert response.json["error"] == "invalid_grant"


def test_redirect_uri_must_match_the_authorization_request(client, rp):
    """Test that a different redirect_uri at the token endpoint is invalid_grant."""
    code, verifier = code_and_verifier(client, rp)
    response = factories.exchange(client, rp, code, verifier,
                                  redirect_uri="https://rp.example.jp/other")
    assert response.json["error"] == "invalid_grant"


def test_wrong_code_verifier_is_invalid_grant(client, rp):
    """Test that PKCE verification failure is invalid_grant (RFC 7636 §4.6)."""
    code, _ = code_and_verifier(client, rp)
    wrong, _ = factories.pkce_pair()
    assert factories.exchange(client, rp, code, wrong).json["error"] == "invalid_grant"


def test_missing_code_verifier_is_invalid_request(client, rp):
    """Test that a code bound to a challenge cannot be redeemed without a verifier."""
    code, _ = code_and_verifier(client, rp)
    assert factories.exchange(client, rp, code).json["error"] == "invalid_request"


def test_code_of_another_client_is_invalid_grant(app, client, rp):
    """Test that a client cannot redeem another client's code, and the code survives."""
    other = factories.rp(rp.company_id)
    code, verifier = code_and_verifier(client, rp)
    stolen = factories.exchange(client, factories.RP(other.client_id, other.client_secret,
                                                     other.company_id), code, verifier)
    assert stolen.json["error"] == "invalid_grant"
    assert factories.exchange(client, rp, code, verifier).status_code == 200


def test_unknown_code_is_invalid_grant(client, rp):
    """Test that a made-up code is invalid_grant."""
    assert factories.exchange(client, rp, "not-a-code").json["error"] == "invalid_grant"


def test_missing_code_is_invalid_request(client, rp):
    """Test that a request without code is invalid_request."""
    response = client.post("/token", data={"grant_type": "authorization_code"},
                           auth=(rp.client_id, rp.client_secret))
    assert response.json["error"] == "invalid_request"


def test_wrong_client_secret_is_invalid_client(client, rp):
    """Test that a wrong secret gives invalid_client with 401 and WWW-Authenticate."""
    code, verifier = code_and_verifier(client, rp)
    response = factories.exchange(client, factories.RP(rp.client_id, "wrong", rp.company_id),
                                  code, verifier)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert "WWW-Authenticate" in response.headers


def test_confidential_client_without_authentication_is_invalid_client(client, rp):
    """Test that a confidential client cannot act as a public one (RFC 6749 §3.2.1)."""
    code, verifier = code_and_verifier(client, rp)
    response = client.post("/token", data={"grant_type": "authorization_code", "code": code,
                                           "redirect_uri": rp.redirect_uri,
                                           "code_verifier": verifier,
                                           "client_id": rp.client_id})
    assert response.json["error"] == "invalid_client"


def test_client_secret_post(app, client):
    """Test that a client registered for client_secret_post authenticates in the body."""
    factories.resident()
    rp = factories.rp(token_endpoint_auth_method="client_secret_post")
    code, verifier = code_and_verifier(client, rp)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier, "client_id": rp.client_id,
            "client_secret": rp.client_secret}
    assert client.post("/token", data=data).status_code == 200


def test_basic_auth_refused_for_a_client_secret_post_client(app, client):
    """Test that a client may only use its registered authentication method."""
    factories.resident()
    rp = factories.rp(token_endpoint_auth_method="client_secret_post")
    code, verifier = code_and_verifier(client, rp)
    assert factories.exchange(client, rp, code, verifier).json["error"] == "invalid_client"


def test_public_client_with_pkce(app, client):
    """Test that a public client redeems its code with client_id and the verifier."""
    factories.resident()
    rp = factories.rp(public=True)
    code, verifier = code_and_verifier(client, rp)
    response = factories.exchange(client, rp, code, verifier)
    assert response.status_code == 200 and response.json["id_token"]


def _private_key_client():
    key = RSAKey.generate_key(2048, private=True)
    jwks = {"keys": [key.as_dict(private=False, kid="k1", alg="RS256")]}
    rp = factories.rp(token_endpoint_auth_method="private_key_jwt", jwks=jwks)
    return rp, key


def _assertion(key, client_id, aud="http://localhost/token", jti=None, exp_in=60):
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + exp_in,
              "jti": jti or factories.token(8)}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


def _private_key_exchange(client, rp, code, verifier, assertion):
    return client.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    })


def test_private_key_jwt(app, client):
    """Test that private_key_jwt (RFC 7523) authenticates a client."""
    factories.resident()
    rp, key = _private_key_client()
    assert rp.client_secret is None
    code, verifier = code_and_verifier(client, rp)
    response = _private_key_exchange(client, rp, code, verifier, _assertion(key, rp.client_id))
    assert response.status_code == 200, response.text


def test_private_key_jwt_assertion_is_single_use(app, client):
    """Test that a replayed client assertion (same jti) is invalid_client."""
    factories.resident()
    rp, key = _private_key_client()
    assertion = _assertion(key, rp.client_id, jti="once")
    code, verifier = code_and_verifier(client, rp)
    assert _private_key_exchange(client, rp, code, verifier, assertion).status_code == 200
    code, verifier = code_and_verifier(client, rp)
    response = _private_key_exchange(client, rp, code, verifier, assertion)
    assert response.json["error"] == "invalid_client"


@pytest.mark.parametrize("case", ["wrong_audience", "expired", "other_key", "garbage"])
def test_private_key_jwt_bad_assertions(app, client, case):
    """Test that a bad client assertion is invalid_client, never a 500."""
    factories.resident()
    rp, key = _private_key_client()
    code, verifier = code_and_verifier(client, rp)
    assertion = {
        "wrong_audience": lambda: _assertion(key, rp.client_id, aud="https://other/token"),
        "expired": lambda: _assertion(key, rp.client_id, exp_in=-600),
        "other_key": lambda: _assertion(RSAKey.generate_key(2048, private=True), rp.client_id),
        "garbage": lambda: "not.a.jwt",
    }[case]()
    response = _private_key_exchange(client, rp, code, verifier, assertion)
    # RFC 6749 §5.2: 400, or 401 for a client that failed to authenticate; an assertion
    # that is not a JWT at all is answered 401, a well-formed but wrong one 400.
    assert response.status_code == (401 if case == "garbage" else 400)
    assert response.json["error"] == "invalid_client"


def test_unsupported_grant_type(client, rp):
    """Test that an unknown grant_type is unsupported_grant_type, even with odd characters."""
    for grant in ("password", 'x"y\\z', "implicit"):
        response = client.post("/token", data={"grant_type": grant},
                               auth=(rp.client_id, rp.client_secret))
        assert response.status_code == 400
        assert response.json["error"] == "unsupported_grant_type"


def test_grant_type_not_registered_is_unauthorized_client(client, rp):
    """Test that a client without client_credentials cannot use it."""
    response = client.post("/token", data={"grant_type": "client_credentials"},
                           auth=(rp.client_id, rp.client_secret))
    assert response.json["error"] == "unauthorized_client"


def test_tokens_are_stored_only_as_digests(app, client, rp):
    """Test that neither access nor refresh token strings are in the database."""
    code, verifier = code_and_verifier(client, rp)
    body = factories.exchange(client, rp, code, verifier).json
    row = db.session.scalar(select(Token))
    stored = repr(vars(row))
    assert body["access_token"] not in stored and body["refresh_token"] not in stored


def test_get_on_token_endpoint_is_405_json(client):
    """Test that GET /token is refused with a JSON error."""
    response = client.get("/token")
    assert response.status_code == 405
    assert response.is_json
