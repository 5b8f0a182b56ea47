"""Signing keys: JWKS contents, ID token signatures and rotation over time."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools

import pytest
from freezegun import freeze_time
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from idp.db import utcnow
from idp.extensions import db
from idp.keys import service as keys
from idp.oauth.oidc import OpenIDCode
from idp.security.algorithms import SIGNING_ALGS
from tests import factories

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
# TEST_SETTINGS: key_publish_delay 3600; default id_token_ttl 3600; 5 minutes' leeway.
PUBLISH_DELAY = dt.timedelta(seconds=3600)
ID_TOKEN_TTL = dt.timedelta(seconds=3600)
LEEWAY = dt.timedelta(minutes=5)
_nonces = itertools.count()


def id_token_response(client, rp, **params) -> dict:
    """Run a code flow (signing in and consenting if asked) and redeem the code."""
    verifier, challenge = factories.pkce_pair()
    nonce = f"nonce-{next(_nonces)}"
    result = factories.Browser(client).code_flow(rp, code_challenge=challenge,
                                                 code_challenge_method="S256", nonce=nonce,
                                                 **params)
    assert "code" in result, result
    response = client.post("/token", data={
        "grant_type": "authorization_code", "code": result["code"],
        "redirect_uri": rp.redirect_uri, "code_verifier": verifier,
    }, auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 200, response.text
    return {**response.json, "nonce": nonce}


def header_kid(id_token: str) -> str:
    """The kid of the key that signed the token (header only, no verification)."""
    return extract_compact(id_token.encode("ascii")).headers()["kid"]


def jwks_kids(client) -> set[str]:
    response = client.get("/jwks.json")
    assert response.status_code == 200
    return {k["kid"] for k in response.json["keys"]}


def current_kids() -> dict[str, str]:
    """Make sure both algorithms have a signing key; return {alg: kid}."""
    kids = {alg: keys.signing_key(alg).kid for alg in SIGNING_ALGS}
    db.session.commit()
    return kids


@pytest.fixture
def rp():
    factories.resident()
    return factories.rp()


@pytest.fixture
def frozen(app):
    with freeze_time(utcnow().replace(microsecond=0)) as clock:
        yield clock


# ---- JWKS -------------------------------------------------------------------

def test_jwks_publishes_rs256_and_es256_public_keys(client):
    """Test that JWKS holds one RS256 and one ES256 key with kid, use and alg."""
    kids = current_kids()
    document = client.get("/jwks.json").json
    by_alg = {k["alg"]: k for k in document["keys"]}
    assert set(by_alg) == {"RS256", "ES256"}
    assert by_alg["RS256"]["kty"] == "RSA"
    assert by_alg["ES256"]["kty"] == "EC"
    assert by_alg["ES256"]["crv"] == "P-256"
    for alg, key in by_alg.items():
        assert key["kid"] == kids[alg]
        assert key["use"] == "sig"


def test_jwks_has_no_private_key_members(client):
    """Test that no published key carries private members (d, p, q, dp, dq, qi)."""
    current_kids()
    for key in client.get("/jwks.json").json["keys"]:
        assert not PRIVATE_MEMBERS & set(key), key


def test_jwks_is_cacheable_for_the_configured_max_age(client):
    """Test that JWKS is sent with Cache-Control public, max-age=jwks_cache_max_age."""
    response = client.get("/jwks.json")
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert response.mimetype == "application/json"


def test_first_id_token_publishes_its_key(client, rp):
    """Test that the key made for the very first ID token is in JWKS afterwards."""
    token = id_token_response(client, rp)["id_token"]
    assert header_kid(token) in jwks_kids(client)


# ---- ID tokens --------------------------------------------------------------

def test_id_token_verifies_against_jwks_with_required_claims(client, rp):
    """Test that the ID token verifies with JWKS and has iss, aud, exp, iat, auth_time,
    nonce, at_hash and sub (auth_time because max_age was sent, OIDC Core §2)."""
    tokens = id_token_response(client, rp, max_age="3600")
    jwks = client.get("/jwks.json").json
    decoded = jwt.decode(tokens["id_token"], KeySet.import_key_set(jwks))
    claims = decoded.claims
    assert decoded.header["alg"] == "RS256"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": "http://localhost"},
        aud={"essential": True, "value": rp.client_id},
        nonce={"essential": True, "value": tokens["nonce"]},
        exp={"essential": True}, iat={"essential": True},
        auth_time={"essential": True}, sub={"essential": True},
        at_hash={"essential": True},
    ).validate(claims)
    assert claims["exp"] - claims["iat"] == int(ID_TOKEN_TTL.total_seconds())
    assert claims["auth_time"] <= claims["iat"]


def test_id_token_at_hash_matches_access_token(client, rp):
    """Test that at_hash is the left half of SHA-256 of the access token (OIDC Core §3.1.3.6)."""
    tokens = id_token_response(client, rp)
    claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(
        client.get("/jwks.json").json)).claims
    digest = hashlib.sha256(tokens["access_token"].encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert claims["at_hash"] == expected


def test_id_token_sub_is_the_userinfo_sub(client, rp):
    """Test that the ID token's sub is the pairwise sub that userinfo returns."""
    tokens = id_token_response(client, rp)
    claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(
        client.get("/jwks.json").json)).claims
    info = client.get("/userinfo",
                      headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    assert claims["sub"] == info.json["sub"]


def test_es256_client_gets_es256_id_token(client):
    """Test that a client registered for ES256 gets an ES256 ID token that verifies
    against JWKS."""
    factories.resident()
    rp = factories.rp(id_token_signed_response_alg="ES256")
    tokens = id_token_response(client, rp)
    decoded = jwt.decode(tokens["id_token"], KeySet.import_key_set(
        client.get("/jwks.json").json))
    assert decoded.header["alg"] == "ES256"
    assert decoded.header["kid"] == keys.signing_key("ES256").kid
    assert decoded.claims["aud"] == rp.client_id


def test_default_client_gets_rs256_id_token(client, rp):
    """Test that a client with no registered algorithm gets id_token_default_alg (RS256)."""
    token = id_token_response(client, rp)["id_token"]
    assert header_kid(token) == keys.signing_key("RS256").kid


# ---- rotation -----------------------------------------------------------------

def test_rotated_key_is_published_at_once(client, frozen):
    """Test that rotate() puts the new keys in JWKS immediately, next to the old ones."""
    old = current_kids()
    new = {k.alg: k.kid for k in keys.rotate()}
    db.session.commit()
    assert jwks_kids(client) == set(old.values()) | set(new.values())


def test_old_key_signs_until_the_publish_delay_passes(client, rp, frozen):
    """Test that after rotate() ID tokens are still signed by the old kid during the delay."""
    old = current_kids()
    keys.rotate()
    db.session.commit()
    frozen.tick(PUBLISH_DELAY - dt.timedelta(seconds=1))
    assert header_kid(id_token_response(client, rp)["id_token"]) == old["RS256"]


def test_new_key_signs_after_the_publish_delay(client, rp, frozen):
    """Test that once key_publish_delay has passed a new code flow's ID token uses the new kid."""
    current_kids()
    new = {k.alg: k.kid for k in keys.rotate()}
    db.session.commit()
    frozen.tick(PUBLISH_DELAY + dt.timedelta(seconds=1))
    token = id_token_response(client, rp)["id_token"]
    assert header_kid(token) == new["RS256"]
    assert header_kid(token) in jwks_kids(client)


def test_token_signed_before_the_switch_still_verifies_after_it(client, rp, frozen):
    """Test that an ID token signed by the old key verifies against JWKS fetched after the
    new key took over."""
    current_kids()
    keys.rotate()
    db.session.commit()
    token = id_token_response(client, rp)["id_token"]
    frozen.tick(PUBLISH_DELAY + dt.timedelta(minutes=30))
    jwks = client.get("/jwks.json").json
    assert jwt.decode(token, KeySet.import_key_set(jwks)).claims["aud"] == rp.client_id


def test_retired_key_stays_until_id_token_ttl_after_activation(client, frozen):
    """Test that the retired key stays in JWKS until id_token_ttl + leeway after the new
    key activated."""
    old = current_kids()
    keys.rotate()
    db.session.commit()
    frozen.tick(PUBLISH_DELAY + ID_TOKEN_TTL + LEEWAY - dt.timedelta(seconds=1))
    assert set(old.values()) <= jwks_kids(client)


def test_retired_key_leaves_jwks_after_id_token_ttl_and_leeway(client, frozen):
    """Test that the retired key disappears from JWKS once its last ID token has expired."""
    old = current_kids()
    new = {k.alg: k.kid for k in keys.rotate()}
    db.session.commit()
    frozen.tick(PUBLISH_DELAY + ID_TOKEN_TTL + LEEWAY + dt.timedelta(seconds=1))
    assert jwks_kids(client) == set(new.values())
    assert not set(old.values()) & jwks_kids(client)


def test_key_states_follow_the_rotation_timeline(frozen):
    """Test that describe() reports published → active → retired → expired over time."""
    old = current_kids()["RS256"]
    new = next(k.kid for k in keys.rotate() if k.alg == "RS256")
    db.session.commit()

    def states():
        return {row["kid"]: row["state"] for row in keys.describe()}

    assert (states()[old], states()[new]) == ("active", "published")
    frozen.tick(PUBLISH_DELAY)
    assert (states()[old], states()[new]) == ("retired", "active")
    frozen.tick(ID_TOKEN_TTL + LEEWAY)
    assert (states()[old], states()[new]) == ("expired", "active")


def test_immediate_rotation_signs_with_the_new_key_at_once(client, rp, frozen):
    """Test that rotate(immediately=True) makes the next ID token use the new kid."""
    current_kids()
    new = {k.alg: k.kid for k in keys.rotate(immediately=True)}
    db.session.commit()
    assert header_kid(id_token_response(client, rp)["id_token"]) == new["RS256"]


def test_immediate_rotation_keeps_the_old_key_in_jwks(client, frozen):
    """Test that after rotate(immediately=True) the old key remains published for verification."""
    old = current_kids()
    new = {k.alg: k.kid for k in keys.rotate(immediately=True)}
    db.session.commit()
    assert jwks_kids(client) == set(old.values()) | set(new.values())
    frozen.tick(ID_TOKEN_TTL + LEEWAY + dt.timedelta(seconds=1))
    assert jwks_kids(client) == set(new.values())


def test_on_demand_key_during_a_pending_rotation_is_retired(frozen):
    """Test that once a rotation's keys sign, each algorithm has exactly one active key."""
    keys.signing_key("RS256")
    db.session.commit()
    keys.rotate()
    db.session.commit()
    keys.signing_key("ES256")  # the first ES256 ID token, during the publish delay
    db.session.commit()
    frozen.tick(PUBLISH_DELAY + ID_TOKEN_TTL + LEEWAY + dt.timedelta(seconds=1))
    active = [row["alg"] for row in keys.describe() if row["state"] == "active"]
    assert sorted(active) == ["ES256", "RS256"]


def test_id_token_issued_at_key_activation_verifies(client, rp, frozen, monkeypatch):
    """Test that an ID token whose issuance straddles the new key's activation still verifies."""
    current_kids()
    keys.rotate()
    db.session.commit()
    frozen.tick(PUBLISH_DELAY - dt.timedelta(seconds=1))
    verifier, challenge = factories.pkce_pair()
    result = factories.Browser(client).code_flow(rp, code_challenge=challenge,
                                                 code_challenge_method="S256")
    gather = OpenIDCode.generate_user_info

    def slow_gather(self, user, scope):
        frozen.tick(dt.timedelta(seconds=2))  # the activation instant passes meanwhile
        return gather(self, user, scope)

    monkeypatch.setattr(OpenIDCode, "generate_user_info", slow_gather)
    response = client.post("/token", data={
        "grant_type": "authorization_code", "code": result["code"],
        "redirect_uri": rp.redirect_uri, "code_verifier": verifier,
    }, auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 200, response.text
    jwks = KeySet.import_key_set(client.get("/jwks.json").json)
    jwt.decode(response.json["id_token"], jwks)


def test_drop_old_removes_compromised_keys_from_jwks_at_once(client, rp, frozen):
    """Test that rotate(drop_old=True) signs with new keys and unpublishes the old ones now."""
    old = current_kids()
    issued = id_token_response(client, rp)["id_token"]
    new = {k.alg: k.kid for k in keys.rotate(drop_old=True)}
    db.session.commit()
    assert jwks_kids(client) == set(new.values())
    with pytest.raises(Exception):  # noqa: B017 - any joserfc verification error
        jwt.decode(issued, KeySet.import_key_set(client.get("/jwks.json").json))
    assert header_kid(id_token_response(client, rp)["id_token"]) == new["RS256"]
    assert not set(old.values()) & jwks_kids(client)


def test_second_rotation_during_the_delay_retires_every_older_key(client, frozen):
    """Test that rotating again (now) stops both the old and the pending key from signing."""
    first = current_kids()
    pending = {k.alg: k.kid for k in keys.rotate()}
    newest = {k.alg: k.kid for k in keys.rotate(immediately=True)}
    db.session.commit()
    for alg in SIGNING_ALGS:
        assert keys.signing_key(alg).kid == newest[alg]
    frozen.tick(dt.timedelta(seconds=3601))
    for alg in SIGNING_ALGS:
        assert keys.signing_key(alg).kid == newest[alg], (first, pending)


def test_jwks_on_a_fresh_install_publishes_keys(client):
    """Test that the very first JWKS request makes and publishes one key per algorithm."""
    document = client.get("/jwks.json").json
    assert sorted(k["alg"] for k in document["keys"]) == ["ES256", "RS256"]
