"""Admins' passkeys: enrolled after a recent check, sign in alone (replacing the password
and the code), and ``admin_passkey_required`` makes them the only way in."""

from __future__ import annotations

import pytest

from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.admin import hidden
from tests.helpers.authenticator import SoftAuthenticator


@pytest.fixture
def admin(app):
    return enrolled_admin()


def post_json(client, path, body, page="/admin/login"):
    token = hidden(client.get(page).text, "csrf_token")
    return client.post(path, json=body, headers={"X-CSRFToken": token})


def enrol_passkey(client, authenticator=None):
    authenticator = authenticator or SoftAuthenticator()
    page = client.get("/admin/passkeys")
    assert page.status_code == 200, page.text
    assert 'data-passkey="register"' in page.text
    started = post_json(client, "/admin/passkeys/options", {}, "/admin/passkeys")
    assert started.status_code == 200, started.text
    done = post_json(client, "/admin/passkeys", {
        "challenge": started.json["challenge"],
        "credential": authenticator.register(started.json["options"]), "name": "YubiKey"},
        "/admin/passkeys")
    assert done.status_code == 201, done.text
    return authenticator


def passkey_login(client, authenticator):
    started = post_json(client, "/admin/login/passkey/options", {})
    return post_json(client, "/admin/login/passkey", {
        "challenge": started.json["challenge"],
        "credential": authenticator.assert_(started.json["options"])})


def test_enrol_then_sign_in_with_the_passkey_alone(client, admin):
    """Test enrolment (fresh after sign-in), then a passkey sign-in without password or code."""
    assert AdminBrowser(client, admin).login().status_code == 303
    authenticator = enrol_passkey(client)
    assert "YubiKey" in client.get("/admin/passkeys").text
    client.delete_cookie("machi_id_admin", path="/admin")
    signed = passkey_login(client, authenticator)
    assert signed.status_code == 200, signed.text
    assert signed.json["redirect"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert events("admin:login:success")[-1].data["method"] == "passkey"
    assert events("admin:passkey:add")


def test_login_page_offers_a_passkey(client):
    """Test the contract on the console's login page."""
    assert 'data-passkey="signin"' in client.get("/admin/login").text


def test_unknown_or_replayed_passkey_is_refused(client, admin):
    """Test a passkey no admin has, and a replayed challenge: 401, audited."""
    response = passkey_login(client, SoftAuthenticator())
    assert response.status_code == 401
    assert events("admin:login:failure")[-1].data["reason"] == "unknown_passkey"


def test_a_residents_passkey_does_not_open_the_console(client, admin):
    """Test that the two populations' challenges do not mix."""
    started = post_json(client, "/login/passkey/options", {}, "/admin/login")
    response = post_json(client, "/admin/login/passkey", {
        "challenge": started.json["challenge"],
        "credential": SoftAuthenticator().assert_(started.json["options"])})
    assert response.status_code == 401
    assert events("admin:login:failure")[-1].data["reason"] == "challenge"


@pytest.fixture
def settings_overrides(request):
    return {"admin_passkey_required": True} if "required" in request.node.name else {}


def test_required_passkey_forces_enrolment_then_replaces_totp(client, admin, frozen_step):
    """Test admin_passkey_required: without one, the console only offers enrolment;
    with one, the password-and-code sign-in is refused (passkey_required)."""
    browser = AdminBrowser(client, admin)
    assert browser.login().status_code == 303
    response = client.get("/admin/companies")
    assert response.status_code == 303 and response.headers["Location"] == "/admin/passkeys"
    authenticator = enrol_passkey(client)
    assert client.get("/admin/companies").status_code == 200
    client.delete_cookie("machi_id_admin", path="/admin")
    frozen_step()
    assert browser.login().status_code == 401
    assert events("admin:login:failure")[-1].data["reason"] == "passkey_required"
    assert passkey_login(client, authenticator).status_code == 200


@pytest.fixture
def frozen_step():
    """Move to the next TOTP step so a second code is not a replay."""
    import datetime as dt  # noqa: PLC0415

    from freezegun import freeze_time  # noqa: PLC0415
    holder = []

    def step():
        frozen = freeze_time(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31), tick=True)
        frozen.start()
        holder.append(frozen)

    yield step
    for frozen in holder:
        frozen.stop()


@pytest.mark.parametrize("body", [{}, {"credential": "x"}, {"challenge": 1, "credential": {}}])
def test_bad_bodies_answer_json_not_500(client, admin, body):
    """Test that garbage posted to the console's passkey endpoints gets JSON 4xx."""
    assert post_json(client, "/admin/login/passkey", body).status_code == 401
    AdminBrowser(client, admin).login()
    response = post_json(client, "/admin/passkeys", body, "/admin/passkeys")
    assert response.status_code == 400 and "error" in response.json


def test_a_reset_removes_the_admins_passkeys(client, admin):
    """Test that resetting an admin deletes their passkeys (a stolen one stops working)."""
    from idp.admin import service as admins  # noqa: PLC0415
    from idp.extensions import db  # noqa: PLC0415

    AdminBrowser(client, admin).login()
    authenticator = enrol_passkey(client)
    admins.reset_admin(admin.email, actor="test")
    db.session.commit()
    client.delete_cookie("machi_id_admin", path="/admin")
    assert passkey_login(client, authenticator).status_code == 401
    assert events("admin:account:reset")[-1].data["passkeys_removed"] == 1
