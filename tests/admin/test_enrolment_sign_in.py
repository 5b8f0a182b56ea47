"""Finishing enrolment signs the admin in (issue 15, item 5): the first code is proven
there, so it cannot be used again on the sign-in page; the enrolment page shows no menu
and speaks the page's language."""

from __future__ import annotations

import pyotp
from freezegun import freeze_time

from idp.admin import service as admins
from idp.admin.models import Admin
from idp.admin.models import AdminSession
from idp.db import utcnow
from idp.extensions import db
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.admin import hidden

PASSWORD = "a-long-admin-password"


def invite(email: str = "new-admin@consortium.example.jp"):
    admin, token = admins.create_admin(email, actor="test")
    db.session.commit()
    return admin, token


def enrol(client, token: str, secret: str, password: str = PASSWORD, code: str | None = None,
          **headers):
    page = client.get(f"/admin/enrol?token={token}", headers=headers)
    return client.post("/admin/enrol", headers=headers, data={
        "token": token, "password": password, "password_repeat": password,
        "code": pyotp.TOTP(secret).now() if code is None else code,
        "csrf_token": hidden(page.text, "csrf_token")})


def test_enrolment_signs_in_with_a_new_session_audited_as_enrolment(client):
    """Test that a good enrolment sets a new console cookie, lands on the dashboard, and is
    audited as a sign-in by enrolment."""
    admin, token = invite()
    with freeze_time(utcnow()):
        response = enrol(client, token, admin.totp_secret)
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"
    assert "machi_id_admin=" in response.headers["Set-Cookie"]
    dashboard = client.get("/admin/")
    assert dashboard.status_code == 200
    assert "new-admin@consortium.example.jp" in dashboard.text
    (success,) = events("admin:login:success")
    assert success.admin_id == admin.id and success.data["method"] == "enrolment"


def test_the_enrolment_code_signs_in_exactly_once(client, app):
    """Test that the code shown while enrolling cannot sign in a second time, in another
    browser, within its window; the sign-in page says nothing else."""
    admin, token = invite()
    with freeze_time(utcnow()):
        code = pyotp.TOTP(admin.totp_secret).now()
        assert enrol(client, token, admin.totp_secret, code=code).status_code == 303
        other = app.test_client()
        page = other.get("/admin/login")
        response = other.post("/admin/login", data={
            "email": "new-admin@consortium.example.jp", "password": PASSWORD, "code": code,
            "csrf_token": hidden(page.text, "csrf_token")})
    assert response.status_code == 401
    assert [e.data["reason"] for e in events("admin:login:failure")] == ["replayed_code"]


def test_enrolment_ends_the_console_session_this_browser_had(client):
    """Test that another admin's session in the same browser ends and the page shows no
    menu, no "signed in as" and no sign-out before the new account exists."""
    other = enrolled_admin()
    assert AdminBrowser(client, other).login().status_code == 303
    admin, token = invite()
    page = client.get(f"/admin/enrol?token={token}")
    assert page.status_code == 200
    assert 'class="admin-nav"' not in page.text and 'class="admin-bar"' not in page.text
    assert other.email not in page.text and "/admin/logout" not in page.text
    with freeze_time(utcnow()):
        assert enrol(client, token, admin.totp_secret).status_code == 303
    db.session.expire_all()
    sessions = db.session.scalars(db.select(AdminSession)).all()
    live = [s.admin_id for s in sessions if s.ended_at is None]
    assert live == [admin.id]


def test_refused_enrolment_speaks_japanese_and_signs_nobody_in(client):
    """Test that a short password on the Japanese page is answered in Japanese, the account
    stays invited, and no console cookie is set."""
    admin, token = invite()
    response = enrol(client, token, admin.totp_secret, password="short-pass",
                     **{"Accept-Language": "ja"})
    assert response.status_code == 400
    assert "パスワードは12文字以上" in response.text
    assert "the password must be" not in response.text
    assert "machi_id_admin=" not in response.headers.get("Set-Cookie", "")
    assert db.session.get(Admin, admin.id).status == "invited"


def test_wrong_code_is_refused_in_english_on_the_english_page(client):
    """Test that a wrong code leaves the account invited and says so in English."""
    admin, token = invite()
    with freeze_time(utcnow()):
        good = pyotp.TOTP(admin.totp_secret).now()
        response = enrol(client, token, admin.totp_secret, code="000000" if good != "000000"
                         else "111111", **{"Accept-Language": "en"})
    assert response.status_code == 400
    assert "The code is not correct." in response.text
    assert db.session.get(Admin, admin.id).status == "invited"


def test_enrolment_without_csrf_changes_nothing(client):
    """Test that a post without the CSRF token neither enrols nor signs in."""
    admin, token = invite()
    response = client.post("/admin/enrol", data={
        "token": token, "password": PASSWORD, "password_repeat": PASSWORD,
        "code": pyotp.TOTP(admin.totp_secret).now()})
    assert response.status_code == 400
    assert db.session.get(Admin, admin.id).status == "invited"
    assert client.get("/admin/").status_code == 303
