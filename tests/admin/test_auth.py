"""Admin accounts: enrolment link, sign-in with password and TOTP, sessions, re-authentication."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pyotp
import pytest
from freezegun import freeze_time

from idp.admin import service as admins
from idp.admin.models import Admin
from idp.admin.models import AdminSession
from idp.db import utcnow
from idp.extensions import db
from tests import factories
from tests.helpers.admin import ADMIN_EMAIL
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.admin import hidden
from tests.helpers.admin import next_step


def failures() -> list[str]:
    return [e.data["reason"] for e in events("admin:login:failure")]


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


# ---- enrolment -------------------------------------------------------------------------

def invite(email: str = ADMIN_EMAIL):
    admin, token = admins.create_admin(email, actor="test")
    db.session.commit()
    return admin, token


def test_enrolment_link_sets_password_and_totp_once(client):
    """Test that the link's page shows a QR code, enrols with password and code, and works once."""
    admin, token = invite()
    page = client.get(f"/admin/enrol?token={token}")
    assert page.status_code == 200
    assert 'src="data:image/svg+xml;base64,' in page.text
    secret = db.session.get(Admin, admin.id).totp_secret
    response = client.post("/admin/enrol", data={
        "token": token, "password": "a-long-admin-password", "password_repeat":
        "a-long-admin-password", "code": pyotp.TOTP(secret).now(),
        "csrf_token": hidden(page.text, "csrf_token")})
    assert response.status_code == 303
    row = db.session.get(Admin, admin.id)
    assert row.status == "active" and row.password_hash.startswith("$argon2id$")
    assert row.enrolment_digest is None
    assert client.get(f"/admin/enrol?token={token}").status_code == 404
    assert [e.admin_id for e in events("admin:account:enrol")] == [admin.id]


@pytest.mark.parametrize(("password", "repeat", "good_code"), [
    ("short-pass", "short-pass", True),
    ("a-long-admin-password", "another-long-password", True),
    ("a-long-admin-password", "a-long-admin-password", False),
    ("kanri-is-in-this-password", "kanri-is-in-this-password", True),
])
def test_enrolment_refuses_weak_password_mismatch_and_wrong_code(client, password, repeat,
                                                                 good_code):
    """Test that a short password, two different passwords, a wrong code or a password with
    the email's name in it leave the account not enrolled and the link usable."""
    admin, token = invite()
    page = client.get(f"/admin/enrol?token={token}")
    secret = db.session.get(Admin, admin.id).totp_secret
    code = pyotp.TOTP(secret).now() if good_code else "000000"
    if not good_code and code == pyotp.TOTP(secret).now():
        code = "111111"
    response = client.post("/admin/enrol", data={
        "token": token, "password": password, "password_repeat": repeat, "code": code,
        "csrf_token": hidden(page.text, "csrf_token")})
    assert response.status_code == 400
    assert db.session.get(Admin, admin.id).status == "invited"
    assert client.get(f"/admin/enrol?token={token}").status_code == 200


def test_enrolment_link_expires(client):
    """Test that a link older than admin_enrolment_ttl (1 day) is refused."""
    with freeze_time(utcnow()) as frozen:
        _, token = invite()
        frozen.tick(dt.timedelta(days=1, seconds=1))
        assert client.get(f"/admin/enrol?token={token}").status_code == 404


def test_unknown_enrolment_token_is_refused(client):
    """Test that a made-up token gives the 'link cannot be used' page, not a 500."""
    assert client.get("/admin/enrol?token=" + "x" * 43).status_code == 404
    assert client.get("/admin/enrol").status_code == 404


# ---- sign-in ------------------------------------------------------------------------------

def test_sign_in_with_password_and_code_opens_the_console(client):
    """Test that password and TOTP sign in, with a separate, strict, HttpOnly /admin cookie."""
    admin = enrolled_admin()
    response = AdminBrowser(client, admin).login()
    assert response.status_code == 303
    cookie = next(h for h in response.headers.getlist("Set-Cookie")
                  if h.startswith("machi_id_admin="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert signed_in(client)
    (success,) = events("admin:login:success")
    assert success.admin_id == admin.id
    # The resident side knows nothing of it: no resident is signed in.
    assert client.get("/account").status_code == 303


def test_missing_code_is_refused_and_audited(client):
    """Test that a right password without the TOTP code does not sign in."""
    admin = enrolled_admin()
    response = AdminBrowser(client, admin).login(code="")
    assert response.status_code == 401
    assert not signed_in(client)
    assert failures() == ["missing_code"]
    assert db.session.scalar(db.select(db.func.count()).select_from(AdminSession)) == 0


def test_a_right_password_is_not_confirmed_without_the_right_code(client):
    """Test that the right password with no code or a wrong code answers exactly as a wrong
    password does (same status, same page, same audit event shape): the sign-in tells
    nothing until both factors are right (issue 12, item 10)."""
    admin = enrolled_admin()
    browser = AdminBrowser(client, admin)
    wrong = "000000" if admin.code() != "000000" else "111111"
    bad_password = "not-the-password-at-all"
    answers = [browser.login(code=""), browser.login(code=wrong),
               browser.login(password=bad_password, code=""),
               browser.login(password=bad_password)]

    def page(response) -> str:
        return re.sub(r'name="csrf_token" value="[^"]*"', "", response.text)

    assert [r.status_code for r in answers] == [401, 401, 401, 401]
    assert len({page(r) for r in answers}) == 1
    recorded = events("admin:login:failure")
    assert [(e.admin_id, sorted(e.data)) for e in recorded] == [(admin.id, ["reason"])] * 4
    assert failures() == ["missing_code", "bad_code", "bad_password", "bad_password"]
    assert not signed_in(client)


def test_wrong_code_wrong_password_unknown_email_all_fail_alike(client):
    """Test that a wrong code, a wrong password and an unknown email get the same answer."""
    admin = enrolled_admin()
    browser = AdminBrowser(client, admin)
    wrong = "000000" if admin.code() != "000000" else "111111"
    answers = [browser.login(code=wrong), browser.login(password="not-the-password-at-all")]
    browser.admin = type(admin)(admin.id, "nobody@example.jp", admin.password, admin.secret)
    answers.append(browser.login())
    assert [r.status_code for r in answers] == [401, 401, 401]
    assert len({r.text.split('role="alert"')[1][:200] for r in answers}) == 1
    assert failures() == ["bad_code", "bad_password", "unknown_admin"]
    assert not signed_in(client)


def test_code_reused_within_its_window_is_refused(client):
    """Test that the code that signed in cannot sign in again, even within its 30 s."""
    admin = enrolled_admin()
    with freeze_time(utcnow()):
        code = admin.code()
        browser = AdminBrowser(client, admin)
        assert browser.login(code=code).status_code == 303
        client.post("/admin/logout", data={"csrf_token": hidden(client.get("/admin/").text,
                                                                   "csrf_token")})
        assert not signed_in(client)
        response = browser.login(code=code)
        assert response.status_code == 401
        assert failures() == ["replayed_code"]
        assert not signed_in(client)


def test_five_failures_lock_the_account_for_fifteen_minutes(client):
    """Test that after 5 failures even the right password and code are refused, then not."""
    admin = enrolled_admin()
    browser = AdminBrowser(client, admin)
    with freeze_time(utcnow()) as frozen:
        for _ in range(5):
            browser.login(password="wrong-password-typed")
        assert browser.login().status_code == 401
        assert failures()[-1] == "locked"
        frozen.tick(dt.timedelta(minutes=16))
        assert browser.login().status_code == 303


def test_disabled_or_uninvited_admin_cannot_sign_in(client):
    """Test that a disabled admin and one who never enrolled are refused."""
    admin = enrolled_admin()
    admins.disable_admin(admin.id, actor="test")
    db.session.commit()
    assert AdminBrowser(client, admin).login().status_code == 401
    invited, _ = admins.create_admin("new@consortium.example.jp", actor="test")
    db.session.commit()
    page = client.get("/admin/login")
    response = client.post("/admin/login", data={
        "email": invited.email, "password": "whatever-password", "code": "123456",
        "csrf_token": hidden(page.text, "csrf_token")})
    assert response.status_code == 401
    assert failures() == ["disabled", "not_enrolled"]


def test_login_without_csrf_token_is_refused(client):
    """Test that a sign-in post without the CSRF token is refused before any check."""
    admin = enrolled_admin()
    response = client.post("/admin/login", data={"email": admin.email,
                                                 "password": admin.password,
                                                 "code": admin.code()})
    assert response.status_code == 400
    assert not signed_in(client)
    assert [e.data["reason"] for e in events("admin:form:rejected")] == ["csrf"]


# ---- sessions ----------------------------------------------------------------------------------

def test_console_needs_a_signed_in_admin(client):
    """Test that every console page sends a stranger to the sign-in page."""
    for path in ("/admin/", "/admin/companies", "/admin/audit", "/admin/keys"):
        response = client.get(path)
        assert response.status_code == 303
        assert urlsplit(response.headers["Location"]).path == "/admin/login"
        assert parse_qs(urlsplit(response.headers["Location"]).query)["next"] == [path]


def test_a_resident_session_is_not_an_admin_session(client):
    """Test that a signed-in resident gets no further than the admin sign-in page."""
    factories.resident()
    factories.Browser(client).login()
    assert client.get("/admin/").status_code == 303


def test_idle_session_ends_after_fifteen_minutes(client):
    """Test that 15 minutes without a request end the session; activity keeps it alive."""
    admin = enrolled_admin()
    with freeze_time(utcnow()) as frozen:
        AdminBrowser(client, admin).login()
        frozen.tick(dt.timedelta(minutes=14))
        assert signed_in(client)
        frozen.tick(dt.timedelta(minutes=14))
        assert signed_in(client)
        frozen.tick(dt.timedelta(minutes=15, seconds=1))
        assert not signed_in(client)


def test_session_ends_after_eight_hours_whatever_the_activity(client):
    """Test the absolute limit: a session used every 10 minutes still ends at 8 hours."""
    admin = enrolled_admin()
    with freeze_time(utcnow()) as frozen:
        AdminBrowser(client, admin).login()
        for _ in range(47):
            frozen.tick(dt.timedelta(minutes=10))
            assert signed_in(client)
        frozen.tick(dt.timedelta(minutes=11))
        assert not signed_in(client)


@pytest.mark.parametrize("settings_overrides", [{"admin_session_idle": 120,
                                                 "admin_session_max": 600}])
def test_session_limits_are_settings(client, settings_overrides):
    """Test that admin_session_idle and admin_session_max are honoured."""
    admin = enrolled_admin()
    with freeze_time(utcnow()) as frozen:
        AdminBrowser(client, admin).login()
        frozen.tick(dt.timedelta(seconds=121))
        assert not signed_in(client)


def test_logout_ends_the_session_on_the_server(client):
    """Test that a copied cookie stops working after sign-out."""
    admin = enrolled_admin()
    AdminBrowser(client, admin).login()
    cookie = client.get_cookie("machi_id_admin", path="/admin").value
    client.post("/admin/logout", data={"csrf_token": hidden(client.get("/admin/").text,
                                                               "csrf_token")})
    client.set_cookie("machi_id_admin", cookie, path="/admin")
    assert not signed_in(client)
    assert len(events("admin:session:end")) == 1


def test_disabling_an_admin_ends_their_sessions_at_once(client):
    """Test that a disabled admin's open session stops working on the next request."""
    admin = enrolled_admin()
    AdminBrowser(client, admin).login()
    admins.disable_admin(admin.id, actor="test")
    db.session.commit()
    assert not signed_in(client)


@pytest.mark.parametrize("settings_overrides", [{"admin_login_limit": "3 per 15 minutes"}])
def test_sign_in_attempts_are_rate_limited_per_address(client, settings_overrides):
    """Test that the admin_login_limit rate answers 429 beyond it."""
    admin = enrolled_admin()
    browser = AdminBrowser(client, admin)
    statuses = [browser.login(password="wrong-password-typed").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


# ---- re-authentication ---------------------------------------------------------------------------

def suspend_form(browser, company_id):
    return browser.form(f"/admin/companies/{company_id}",
                        f"/admin/companies/{company_id}/suspend", confirm="yes")


def test_destructive_action_needs_a_recent_check(client):
    """Test that 5 minutes after sign-in a suspension first asks who you are, then works."""
    admin = enrolled_admin()
    company_id = factories.company()
    browser = AdminBrowser(client, admin)
    with freeze_time(utcnow()) as frozen:
        browser.login()
        frozen.tick(dt.timedelta(minutes=5, seconds=1))
        response = suspend_form(browser, company_id)
        assert response.status_code == 303
        assert urlsplit(response.headers["Location"]).path == "/admin/reauth"
        assert db.session.get(factories.clients.Company, company_id).status == "active"
        next_step(frozen)
        assert browser.reauth(code=admin.code()).status_code == 303
        assert suspend_form(browser, company_id).status_code == 303
        db.session.rollback()
        assert db.session.get(factories.clients.Company, company_id).status == "suspended"
    assert [e.data["method"] for e in events("admin:reauth:success")] == ["otp"]


def test_reauth_refuses_a_used_code_and_accepts_the_password(client):
    """Test that re-authentication cannot reuse the sign-in code, but the password works."""
    admin = enrolled_admin()
    browser = AdminBrowser(client, admin)
    with freeze_time(utcnow()):
        code = admin.code()
        browser.login(code=code)
        assert browser.reauth(code=code).status_code == 401
        assert browser.reauth().status_code == 401
        assert browser.reauth(password="wrong-password-typed").status_code == 401
        assert browser.reauth(password=admin.password).status_code == 303
    reasons = [e.data["reason"] for e in events("admin:reauth:failure")]
    assert reasons == ["replayed_code", "missing_credentials", "bad_password"]


def test_enrolled_admin_from_cli_link_can_sign_in(client, cli):
    """Test the whole path: `idp admins create` link → enrol page → signed in at once →
    signed out → the enrolment's code is refused (it works once) → the next code signs in."""
    result = cli("admins", "create", "--email", "ops@consortium.example.jp", "--json")
    assert result.exit_code == 0, result.output
    url = json.loads(result.output)["enrolment_url"]
    path = urlsplit(url).path + "?" + urlsplit(url).query
    page = client.get(path)
    assert page.status_code == 200
    admin = db.session.scalar(db.select(Admin).where(Admin.email == "ops@consortium.example.jp"))
    token = parse_qs(urlsplit(url).query)["token"][0]
    with freeze_time(utcnow()) as frozen:
        code = pyotp.TOTP(admin.totp_secret).now()
        enrolled = client.post("/admin/enrol", data={
            "token": token, "password": "counter-long-password-1", "password_repeat":
            "counter-long-password-1", "code": code,
            "csrf_token": hidden(page.text, "csrf_token")})
        assert enrolled.status_code == 303 and enrolled.headers["Location"] == "/admin/"
        assert signed_in(client)
        home = client.get("/admin/")
        client.post("/admin/logout", data={"csrf_token": hidden(home.text, "csrf_token",
                                                                "/admin/logout")})
        assert not signed_in(client)

        def login(code: str):
            page = client.get("/admin/login")
            return client.post("/admin/login", data={
                "email": "ops@consortium.example.jp", "password": "counter-long-password-1",
                "code": code, "csrf_token": hidden(page.text, "csrf_token")})

        assert login(code).status_code == 401
        assert failures() == ["replayed_code"]
        next_step(frozen)
        assert login(pyotp.TOTP(admin.totp_secret).at(time.time())).status_code == 303
        assert signed_in(client)
