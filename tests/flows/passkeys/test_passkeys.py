"""Passkeys end to end on the test client, with a software authenticator
(tests/helpers/authenticator.py): adding (after the password), naming, listing,
removing, signing in from the login page, inside the code flow and the device flow,
``amr``/``acr`` in the ID token and ``acr_values=phr``, single-use challenges,
counters and backup flags, the audit trail and the rate limits."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.accounts.models import Passkey
from idp.accounts.models import PasskeyChallenge
from idp.extensions import db
from tests import factories
from tests.helpers.accounts import sign_in
from tests.helpers.accounts import tags
from tests.helpers.authenticator import SoftAuthenticator
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import redeem

EMAIL = "hanako@example.jp"


@pytest.fixture
def resident(app):
    return factories.resident(EMAIL)


def _csrf(client, path="/account/security") -> str:
    return factories.csrf(client.get(path).text)


def post_json(client, path, body, csrf_page="/account/security"):
    return client.post(path, json=body, headers={"X-CSRFToken": _csrf(client, csrf_page)})


def add_passkey(client, authenticator=None, name="iPhone", password=factories.PASSWORD):
    authenticator = authenticator or SoftAuthenticator()
    started = post_json(client, "/account/security/passkeys/options", {"password": password})
    assert started.status_code == 200, started.text
    finished = post_json(client, "/account/security/passkeys", {
        "challenge": started.json["challenge"],
        "credential": authenticator.register(started.json["options"]), "name": name})
    assert finished.status_code == 201, finished.text
    return authenticator


def passkey_sign_in(client, authenticator, **extra):
    started = post_json(client, "/login/passkey/options", {}, csrf_page="/login")
    assert started.status_code == 200, started.text
    return post_json(client, "/login/passkey", {
        "challenge": started.json["challenge"],
        "credential": authenticator.assert_(started.json["options"]), **extra},
        csrf_page="/login")


def enrolled(client, resident) -> SoftAuthenticator:
    sign_in(client)
    authenticator = add_passkey(client)
    client.post("/logout", data={"csrf_token": _csrf(client, "/logout")})
    client.delete_cookie("session")
    return authenticator


def rows() -> list[Passkey]:
    db.session.expire_all()
    return list(db.session.scalars(select(Passkey).order_by(Passkey.id)))


# ---- adding, naming, listing, removing -------------------------------------------------

def test_add_needs_the_password(client, resident):
    """Test that no challenge is given without the current password (re-authentication)."""
    sign_in(client)
    response = post_json(client, "/account/security/passkeys/options", {"password": "wrong"})
    assert response.status_code == 401
    assert response.json["error"] == "bad_password"
    assert db.session.scalar(select(PasskeyChallenge.id)) is None


def test_add_lists_and_audits_the_passkey(client, resident):
    """Test that an added passkey is listed with its name, one child per passkey."""
    sign_in(client)
    add_passkey(client, name="  Pixel   8 ")
    add_passkey(client, name="")
    page = client.get("/account/security").text
    listed = re.search(r'data-passkey="list">(.*?)</ul>', page, re.S).group(1)
    assert listed.count("<li ") == 2
    assert "Pixel 8" in listed and "Passkey 2" in listed
    assert [r.name for r in rows()] == ["Pixel 8", "Passkey 2"]
    assert len(tags("resident:passkey:add")) == 2


def test_registration_challenge_is_single_use_and_bound_to_the_resident(client, resident):
    """Test that a challenge works once, and not after it expired."""
    sign_in(client)
    authenticator = SoftAuthenticator()
    started = post_json(client, "/account/security/passkeys/options",
                        {"password": factories.PASSWORD})
    body = {"challenge": started.json["challenge"],
            "credential": authenticator.register(started.json["options"])}
    assert post_json(client, "/account/security/passkeys", body).status_code == 201
    again = post_json(client, "/account/security/passkeys", body)
    assert again.status_code == 400 and again.json["error"] == "challenge"
    started = post_json(client, "/account/security/passkeys/options",
                        {"password": factories.PASSWORD})
    with freeze_time(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4)):
        late = post_json(client, "/account/security/passkeys", {
            "challenge": started.json["challenge"],
            "credential": SoftAuthenticator().register(started.json["options"])})
    assert late.status_code == 400 and late.json["error"] == "challenge"


@pytest.mark.parametrize("credential", [None, "x", {"id": "a"}, {"id": "a", "response": {}}])
def test_bad_registration_answers_400(client, resident, credential):
    """Test that garbage gets a JSON 400, never a 500."""
    sign_in(client)
    started = post_json(client, "/account/security/passkeys/options",
                        {"password": factories.PASSWORD})
    response = post_json(client, "/account/security/passkeys",
                         {"challenge": started.json["challenge"], "credential": credential})
    assert response.status_code == 400
    assert rows() == []


def test_rename_and_remove(client, resident):
    """Test renaming, then removing with the password (a wrong one removes nothing)."""
    sign_in(client)
    add_passkey(client)
    passkey = rows()[0]
    client.post(f"/account/security/passkeys/{passkey.id}/name",
                data={"csrf_token": _csrf(client), "name": "仕事用の鍵"})
    assert rows()[0].name == "仕事用の鍵"
    client.post(f"/account/security/passkeys/{passkey.id}/remove",
                data={"csrf_token": _csrf(client), "password": "wrong"})
    assert len(rows()) == 1
    response = client.post(f"/account/security/passkeys/{passkey.id}/remove",
                           data={"csrf_token": _csrf(client), "password": factories.PASSWORD})
    assert response.status_code == 303
    assert rows() == []
    assert tags("resident:passkey:remove")


def test_another_residents_passkey_cannot_be_touched(client, resident):
    """Test that ids of someone else's passkeys change nothing."""
    sign_in(client)
    add_passkey(client)
    theirs = rows()[0].id
    factories.resident("taro@example.jp")
    other = client.application.test_client()
    sign_in(other, "taro@example.jp")
    other.post(f"/account/security/passkeys/{theirs}/remove",
               data={"csrf_token": _csrf(other), "password": factories.PASSWORD})
    other.post(f"/account/security/passkeys/{theirs}/name",
               data={"csrf_token": _csrf(other), "name": "mine"})
    assert [r.name for r in rows()] == ["iPhone"]


# ---- signing in ---------------------------------------------------------------------------

def test_login_page_offers_a_passkey(client):
    """Test the contract: a sign-in button, the autofill hint, our own script."""
    page = client.get("/login").text
    assert 'data-passkey="signin"' in page
    assert 'autocomplete="username webauthn"' in page
    assert '<script src="/static/passkeys.js" defer></script>' in page
    assert client.get("/static/passkeys.js").status_code == 200


def test_sign_in_with_a_passkey_skips_the_password_and_totp(client, resident):
    """Test that a passkey signs in (multi-factor by itself: no TOTP step) and is audited."""
    authenticator = enrolled(client, resident)
    resident.totp_secret, resident.totp_enabled_at = "JBSWY3DPEHPK3PXP", dt.datetime.now(dt.UTC)
    db.session.commit()
    response = passkey_sign_in(client, authenticator)
    assert response.status_code == 200, response.text
    assert response.json["redirect"] == "/"
    assert client.get("/account").status_code == 200
    success = tags("resident:login:success")[-1]
    assert success.data["amr"] == ["hwk", "user", "mfa"]
    assert rows()[0].sign_count == 1 and rows()[0].last_used_at is not None


def test_passkey_sign_in_in_the_code_flow_sets_amr_and_acr(client, resident):
    """Test that the ID token says how: amr hwk/user/mfa, acr phrh."""
    authenticator = enrolled(client, resident)
    rp = factories.rp()
    verifier, challenge = factories.pkce_pair()
    browser = factories.Browser(client)
    response = browser.authorize(rp, scope="openid", code_challenge=challenge,
                                 code_challenge_method="S256")
    uid = factories.query(response.headers["Location"])["interaction"]
    signed = passkey_sign_in(client, authenticator, interaction=uid)
    assert signed.status_code == 200, signed.text
    response = client.get(signed.json["redirect"])
    if "/consent/" in response.headers["Location"]:
        response = browser.consent(response.headers["Location"].split("localhost")[-1],
                                   scopes=["openid"])
    code = factories.query(response.headers["Location"])["code"]
    claims = jwt_claims(redeem(client, rp, code, verifier).json["id_token"])
    assert claims["amr"] == ["hwk", "user", "mfa"]
    assert claims["acr"] == "phrh"


def test_a_synced_passkey_is_swk_and_phr(client, resident):
    """Test that a backup-eligible passkey signs in as swk and earns only phr."""
    sign_in(client)
    authenticator = add_passkey(client, SoftAuthenticator(backup_eligible=True, backed_up=True))
    client.delete_cookie("session")
    assert passkey_sign_in(client, authenticator).status_code == 200
    assert tags("resident:login:success")[-1].data["amr"] == ["swk", "user", "mfa"]
    assert rows()[0].multi_device and rows()[0].backed_up


def test_password_sessions_have_no_acr(client, resident):
    """Test that a password sign-in earns no acr (nothing phishing-resistant)."""
    from tests.helpers.oauth import tokens_for  # noqa: PLC0415
    claims = jwt_claims(tokens_for(client, factories.rp(), scope="openid")["id_token"])
    assert claims["amr"] == ["pwd"] and "acr" not in claims


def test_acr_values_phr_asks_a_password_session_for_a_passkey(client, resident):
    """Test that acr_values=phr sends a password-signed-in resident with a passkey back
    to the login page (passkey only), and prompt=none gets login_required."""
    enrolled(client, resident)
    sign_in(client)
    rp = factories.rp()
    browser = factories.Browser(client)
    response = browser.authorize(rp, scope="openid", acr_values="phr")
    assert "/login?interaction=" in response.headers["Location"]
    page = client.get(response.headers["Location"]).text
    assert "パスキーでのログインを求めています" in page
    assert 'name="password"' not in page
    none = browser.authorize(rp, scope="openid", acr_values="phr", prompt="none")
    assert factories.query(none.headers["Location"])["error"] == "login_required"


def test_acr_values_phr_without_a_passkey_goes_on_honestly(client, resident):
    """Test that a resident without a passkey is not stuck: the ID token has no acr."""
    from tests.helpers.oauth import tokens_for  # noqa: PLC0415
    claims = jwt_claims(tokens_for(client, factories.rp(), scope="openid",
                                   acr_values="phr")["id_token"])
    assert "acr" not in claims


def test_sign_in_challenge_is_single_use(client, resident):
    """Test that a replayed assertion (same challenge) is refused and audited."""
    authenticator = enrolled(client, resident)
    started = post_json(client, "/login/passkey/options", {}, csrf_page="/login")
    body = {"challenge": started.json["challenge"],
            "credential": authenticator.assert_(started.json["options"])}
    assert post_json(client, "/login/passkey", body, csrf_page="/login").status_code == 200
    client.delete_cookie("session")
    again = post_json(client, "/login/passkey", body, csrf_page="/login")
    assert again.status_code == 400 and again.json["error"] == "expired"
    assert tags("resident:login:failure")[-1].data["reason"] == "challenge"


def test_a_counter_that_does_not_grow_is_refused(client, resident):
    """Test that a cloned authenticator (counter not above the stored one) is refused."""
    authenticator = enrolled(client, resident)
    assert passkey_sign_in(client, authenticator).status_code == 200
    client.delete_cookie("session")
    authenticator.counter -= 1
    response = passkey_sign_in(client, authenticator)
    assert response.status_code == 401
    assert tags("resident:login:failure")[-1].data["reason"] == "counter"


def test_a_flipped_backup_eligibility_is_refused(client, resident):
    """Test that a credential whose BE flag changes is refused (it never may)."""
    authenticator = enrolled(client, resident)
    authenticator.backup_eligible = True
    response = passkey_sign_in(client, authenticator)
    assert response.status_code == 401
    assert tags("resident:login:failure")[-1].data["reason"] == "backup_eligibility"


def test_an_unknown_passkey_is_refused_and_audited(client, resident):
    """Test that a passkey we never registered is refused with 401."""
    authenticator = SoftAuthenticator()
    authenticator.user_handle = b"nobody"
    response = passkey_sign_in(client, authenticator)
    assert response.status_code == 401
    assert tags("resident:login:failure")[-1].data["reason"] == "unknown_passkey"


@pytest.mark.parametrize("body", [{}, {"credential": "x"}, {"challenge": 5, "credential": {}}])
def test_bad_sign_in_bodies_answer_json(client, body):
    """Test that malformed bodies get 400/401 JSON, never a 500."""
    response = post_json(client, "/login/passkey", body, csrf_page="/login")
    assert response.status_code in (400, 401)
    assert "error" in response.json


def test_a_removed_passkey_no_longer_signs_in_and_the_password_still_does(client, resident):
    """Test the fallback: with every passkey gone, the password signs in."""
    sign_in(client)
    authenticator = add_passkey(client)
    client.post(f"/account/security/passkeys/{rows()[0].id}/remove",
                data={"csrf_token": _csrf(client), "password": factories.PASSWORD})
    client.delete_cookie("session")
    assert passkey_sign_in(client, authenticator).status_code == 401
    sign_in(client)


def test_passkey_sign_in_continues_the_device_flow(client, resident):
    """Test that the login page reached from /device/confirm returns there."""
    authenticator = enrolled(client, resident)
    response = passkey_sign_in(client, authenticator, next="/device/confirm")
    assert response.json["redirect"] == "/device/confirm"
    off_site = passkey_sign_in(client, authenticator, next="https://evil.example/")
    assert off_site.json["redirect"] == "/"


def device_flow_claims(client, authenticator) -> dict:
    """A kiosk asks for a code; the resident signs in on the phone with the passkey and
    allows; the claims of the ID token the kiosk's poll gets."""
    from idp.kiosk import service as kiosks  # noqa: PLC0415
    from tests.helpers import device  # noqa: PLC0415

    client_row, secret, _ = kiosks.create_kiosk(factories.company("C社"), "北2条広場サイネージ",
                                                "北2条西4丁目 交差点広場")
    db.session.commit()
    kiosk = factories.RP(client_row.id, secret, client_row.company, redirect_uri="")
    body = device.authorize(client, kiosk)
    assert "/login" in device.enter_code(client, body["user_code"]).headers["Location"]
    signed = passkey_sign_in(client, authenticator, next="/device/confirm")
    assert signed.json["redirect"] == "/device/confirm"
    assert device.decide(client).status_code == 200
    polled = device.poll(client, kiosk, body["device_code"])
    assert polled.status_code == 200, polled.text
    return jwt_claims(polled.json["id_token"])


def test_passkey_sign_in_in_the_device_flow_sets_amr_and_acr(client, resident):
    """Test that the kiosk's ID token says how the resident signed in on the phone:
    amr hwk/user/mfa and acr phrh, as in the code flow."""
    claims = device_flow_claims(client, enrolled(client, resident))
    assert claims["amr"] == ["hwk", "user", "mfa"]
    assert claims["acr"] == "phrh"


def test_a_synced_passkey_in_the_device_flow_is_swk_and_phr(client, resident):
    """Test that a backup-eligible passkey reaches the kiosk as swk and earns only phr."""
    sign_in(client)
    authenticator = add_passkey(client, SoftAuthenticator(backup_eligible=True, backed_up=True))
    client.post("/logout", data={"csrf_token": _csrf(client, "/logout")})
    claims = device_flow_claims(client, authenticator)
    assert claims["amr"] == ["swk", "user", "mfa"]
    assert claims["acr"] == "phr"


def test_registration_offers_a_passkey_once_the_address_is_verified(client, resident):
    """Test that the page showing the new consortium ID offers to add a passkey."""
    sign_in(client)
    page = client.get("/register/done").text
    assert 'data-passkey="register"' in page
    assert "/account/security/passkeys/options" in page
    assert 'data-passkey="register"' in client.get("/account/security").text


def test_export_lists_passkeys_and_deletion_removes_them(client, resident):
    """Test the privacy operations: names and dates exported (no keys), rows deleted."""
    import json  # noqa: PLC0415

    sign_in(client)
    authenticator = add_passkey(client)
    exported = json.loads(client.get("/account/export").data)
    assert [p["name"] for p in exported["account"]["passkeys"]] == ["iPhone"]
    assert "public_key" not in json.dumps(exported)
    client.post("/account/delete", data={"csrf_token": _csrf(client, "/account/delete"),
                                         "password": factories.PASSWORD})
    assert rows() == []
    assert passkey_sign_in(client, authenticator).status_code == 401


def test_a_user_handle_of_someone_else_is_refused(client, resident):
    """Test WebAuthn §7.2 step 6: the assertion's user handle must name the owner."""
    authenticator = enrolled(client, resident)
    authenticator.user_handle = b"SOMEONEELSE12345"
    response = passkey_sign_in(client, authenticator)
    assert response.status_code == 401
    assert tags("resident:login:failure")[-1].data["reason"] == "user_handle"


def test_wrong_answers_for_one_passkey_are_slowed_like_wrong_passwords(client, resident):
    """Test the per-credential growing delay: after the free failures, 429 with Retry-After."""
    authenticator = enrolled(client, resident)
    statuses = []
    for _ in range(7):
        authenticator.counter = 0  # a cloned key's counter: refused after the first use
        response = passkey_sign_in(client, authenticator)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[0] == 200 and set(statuses[1:-1]) == {401}
    assert statuses[-1] == 429 and response.json["error"] == "slow_down"
    assert int(response.headers["Retry-After"]) > 0
