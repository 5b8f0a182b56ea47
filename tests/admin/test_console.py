"""The admin console: companies, clients and kiosks, terms, keys, admins, the audit page,
the dashboard — and forged, replayed or refused posts that change nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.admin.models import Admin
from idp.clients import service as clients
from idp.clients.models import Client
from idp.clients.models import Company
from idp.db import utcnow
from idp.extensions import db
from idp.keys.models import SigningKey
from idp.kiosk import service as kiosks
from idp.sensors import service as sensors
from idp.terms import service as terms
from tests import factories
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.admin import hidden
from tests.helpers.admin import next_step
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo


@pytest.fixture
def admin(app):
    return enrolled_admin()


@pytest.fixture
def browser(client, admin):
    browser = AdminBrowser(client, admin)
    assert browser.login().status_code == 303
    return browser


def flashed(browser, path: str) -> str:
    return browser.client.get(path).text


def tbody(html: str) -> str:
    """The first table's rows (filters and menus above them also name companies)."""
    return html.split("<tbody>")[1].split("</tbody>")[0]


def company(company_id: str) -> Company:
    db.session.rollback()
    return db.session.get(Company, company_id)


# ---- companies ------------------------------------------------------------------------------

def test_admit_rename_and_record_a_contract(browser, admin):
    """Test the company lifecycle on the console; every event names the admin."""
    response = browser.form("/admin/companies", "/admin/companies", name="B社")
    assert response.status_code == 303
    row = db.session.scalar(select(Company).where(Company.name == "B社"))
    page = f"/admin/companies/{row.id}"
    assert browser.form(page, f"{page}/edit", name="B社（旧C社）").status_code == 303
    assert browser.form(page, f"{page}/contract", reference="CONS-2026-014", version="2.1",
                        signed_on="2026-04-01").status_code == 303
    row = company(row.id)
    assert row.name == "B社（旧C社）"
    assert (row.contract.reference, row.contract.version, row.contract.signed_on) == (
        "CONS-2026-014", "2.1", dt.date(2026, 4, 1))
    text = browser.client.get(page).text
    assert "CONS-2026-014" in text
    tags = [(e.tag, e.admin_id, e.actor) for e in events("company:create", "company:update",
                                                          "company:contract:record")]
    assert tags == [("company:create", admin.id, "admin"), ("company:update", admin.id, "admin"),
                    ("company:contract:record", admin.id, "admin")]


def test_suspend_reinstate_and_revoke_from_the_console(browser):
    """Test suspension, reinstatement and permanent revocation (confirmed by typing the id)."""
    company_id = factories.company()
    page = f"/admin/companies/{company_id}"
    assert browser.form(page, f"{page}/suspend", confirm="yes").status_code == 303
    assert company(company_id).status == "suspended"
    assert browser.form(page, f"{page}/reinstate").status_code == 303
    assert company(company_id).status == "active"
    browser.form(page, f"{page}/revoke", confirm="wrong")
    assert company(company_id).status == "active"
    assert browser.form(page, f"{page}/revoke", confirm=company_id).status_code == 303
    assert company(company_id).status == "revoked"
    (refusal,) = events("admin:action:refused")
    assert (refusal.data["action"], refusal.company_id) == ("company:revoke", company_id)
    assert [e.tag for e in events("company:suspend", "company:reinstate", "company:revoke")] \
        == ["company:suspend", "company:reinstate", "company:revoke"]


def test_suspending_an_unknown_company_is_refused_and_audited(browser):
    """Test that a post for a company that does not exist changes nothing, says why, no 500."""
    page = browser.client.get("/admin/companies")
    response = browser.client.post("/admin/companies/co_NOSUCHCOMPANY/suspend", data={
        "csrf_token": hidden(page.text, "csrf_token", "/admin/companies"),
        "form_token": hidden(page.text, "form_token", "/admin/companies"),
        "return_to": "/admin/companies"})
    assert response.status_code == 303
    assert "co_NOSUCHCOMPANY" in browser.client.get("/admin/companies").text
    (refusal,) = events("admin:action:refused")
    assert refusal.data == {"action": "company:suspend",
                            "reason": "no company co_NOSUCHCOMPANY"}
    assert refusal.company_id == "co_NOSUCHCOMPANY"
    assert events("company:suspend") == []


def test_unknown_company_page_is_404_not_500(browser):
    assert browser.client.get("/admin/companies/co_NOPE").status_code == 404
    assert browser.client.get("/admin/clients/mc_NOPE").status_code == 404


# ---- forged and replayed posts ------------------------------------------------------------------

def test_forged_post_without_csrf_changes_nothing_and_is_audited(browser):
    """Test that a post without the CSRF token (a forged cross-site form) is refused."""
    company_id = factories.company()
    page = browser.client.get(f"/admin/companies/{company_id}")
    response = browser.client.post(f"/admin/companies/{company_id}/suspend", data={
        "form_token": hidden(page.text, "form_token", f"/admin/companies/{company_id}/suspend")})
    assert response.status_code == 400
    assert company(company_id).status == "active"
    assert [e.data["reason"] for e in events("admin:form:rejected")] == ["csrf"]


def test_post_without_form_token_changes_nothing(browser):
    """Test that a post with a valid CSRF token but no one-time form token is refused."""
    company_id = factories.company()
    page = browser.client.get(f"/admin/companies/{company_id}")
    response = browser.client.post(f"/admin/companies/{company_id}/suspend", data={
        "csrf_token": hidden(page.text, "csrf_token")})
    assert response.status_code == 400
    assert company(company_id).status == "active"
    assert [e.data["reason"] for e in events("admin:form:rejected")] == ["missing"]


def test_replayed_post_is_refused_the_second_time(browser):
    """Test that the same form sent twice acts once; the replay answers 409 and is audited."""
    path = "/admin/companies"
    page = browser.client.get(path)
    data = {"csrf_token": hidden(page.text, "csrf_token", path),
            "form_token": hidden(page.text, "form_token", path), "name": "D社"}
    assert browser.client.post(path, data=data).status_code == 303
    replay = browser.client.post(path, data=data)
    assert replay.status_code == 409
    assert len(db.session.scalars(select(Company).where(Company.name == "D社")).all()) == 1
    assert [e.data["reason"] for e in events("admin:form:rejected")] == ["replayed"]


def test_form_token_of_another_session_is_refused(browser, client, admin):
    """Test that a form token stolen from one admin session does not work in another."""
    page = client.get("/admin/companies")
    token = hidden(page.text, "form_token", "/admin/companies")
    other = client.application.test_client()
    second = enrolled_admin("other@consortium.example.jp")
    AdminBrowser(other, second).login()
    other_page = other.get("/admin/companies")
    response = other.post("/admin/companies", data={
        "csrf_token": hidden(other_page.text, "csrf_token"), "form_token": token,
        "name": "E社"})
    assert response.status_code == 400
    assert db.session.scalar(select(Company).where(Company.name == "E社")) is None
    assert [e.data["reason"] for e in events("admin:form:rejected")] == ["invalid"]


def test_post_after_sign_out_goes_to_sign_in(browser):
    """Test that a form posted from a session that has ended changes nothing."""
    company_id = factories.company()
    page = browser.client.get(f"/admin/companies/{company_id}")
    browser.client.post("/admin/logout", data={"csrf_token": hidden(page.text, "csrf_token")})
    response = browser.client.post(f"/admin/companies/{company_id}/suspend", data={
        "csrf_token": hidden(page.text, "csrf_token"),
        "form_token": hidden(page.text, "form_token", f"/admin/companies/{company_id}/suspend")})
    assert response.status_code == 303 and "/admin/login" in response.headers["Location"]
    assert company(company_id).status == "active"


# ---- clients ---------------------------------------------------------------------------------------

def register(browser, company_id, **fields):
    data = {"company_id": company_id, "name": "YYYサービス",
            "redirect_uris": "https://rp.example.jp/cb\nhttps://rp.example.jp/cb2",
            "grant_type": ["authorization_code", "refresh_token"],
            "scope": ["openid", "email", "offline_access"], "purpose": "会員登録",
            "purpose_en": "Membership", **fields}
    return browser.form(f"/admin/clients/new?company={company_id}", "/admin/clients/new",
                        **data)


def test_register_a_client_shows_the_secret_once(browser, client):
    """Test that registration shows the secret on the response page only, and it works."""
    company_id = factories.company()
    response = register(browser, company_id)
    assert response.status_code == 200
    client_id = re.search(r"(mc_[0-9A-Z]{20})", response.text).group(1)
    secret = re.search(r'<code class="mono">([^<]+)</code>', response.text).group(1)
    row = db.session.get(Client, client_id)
    assert row.redirect_uris == ["https://rp.example.jp/cb", "https://rp.example.jp/cb2"]
    assert secret not in client.get(f"/admin/clients/{client_id}").text
    assert row.check_client_secret(secret)


def test_invalid_registration_keeps_the_form_and_is_audited(browser):
    """Test that an http redirect URI on a public host is refused with the reason."""
    company_id = factories.company()
    response = register(browser, company_id, redirect_uris="http://rp.example.jp/cb")
    assert response.status_code == 400
    assert "http://rp.example.jp/cb" in response.text
    assert db.session.scalar(select(Client)) is None
    assert events("admin:action:refused")[0].data["action"] == "client:create"


def test_edit_redirect_uris_scopes_grants_and_purpose(browser, client):
    """Test that editing takes effect, and a removed scope revokes tokens carrying it."""
    factories.resident()
    rp = factories.rp()
    issued = tokens_for(client, rp, "openid email")
    page = f"/admin/clients/{rp.client_id}"
    response = browser.form(page, f"{page}/edit", name="新サービス名",
                            redirect_uris=rp.redirect_uri + "\nhttps://rp.example.jp/new",
                            grant_type=["authorization_code"], scope=["openid", "name"],
                            purpose="新しい目的", purpose_en="New purpose",
                            backchannel_logout_uri="https://rp.example.jp/bcl")
    assert response.status_code == 303
    db.session.rollback()
    row = db.session.get(Client, rp.client_id)
    assert (row.name, row.scopes, row.grant_types, row.purpose) == (
        "新サービス名", ["openid", "name"], ["authorization_code"], "新しい目的")
    assert row.backchannel_logout_uri == "https://rp.example.jp/bcl"
    assert userinfo(client, issued["access_token"]).status_code == 401
    (update,) = events("client:update")
    assert update.data["changes"]["scopes"] == [factories.ALL_SCOPES, ["openid", "name"]]
    assert update.data["tokens_revoked"] == 1


def test_editing_a_revoked_client_is_refused_and_changes_nothing(browser):
    """Test that a revoked client's settings cannot change; the refusal is audited."""
    rp = factories.rp()
    page = f"/admin/clients/{rp.client_id}"
    form_page = browser.client.get(page)
    clients.revoke_client(rp.client_id)
    db.session.commit()
    response = browser.client.post(f"{page}/edit", data={
        "csrf_token": hidden(form_page.text, "csrf_token", f"{page}/edit"),
        "form_token": hidden(form_page.text, "form_token", f"{page}/edit"),
        "name": "changed", "redirect_uris": rp.redirect_uri, "grant_type": "authorization_code",
        "scope": "openid", "return_to": page})
    assert response.status_code == 303
    db.session.rollback()
    assert db.session.get(Client, rp.client_id).name == "XXXサービス"
    (refusal,) = events("admin:action:refused")
    assert refusal.data["action"] == "client:update"
    assert "revoked" in refusal.data["reason"]
    assert f"{page}/edit" not in browser.client.get(page).text


def test_a_kiosk_cannot_be_given_refresh_on_the_console(browser):
    """Test that the console refuses refresh_token/offline_access for a device-flow
    client, at registration and at edit, with the reason; nothing changes."""
    company_id = factories.company()
    response = register(browser, company_id, redirect_uris="",
                        grant_type=[kiosks.DEVICE_CODE, "refresh_token"],
                        scope=["openid", "touch_events"])
    assert response.status_code == 400
    assert "cannot have the refresh_token grant" in response.text
    assert db.session.scalar(select(Client)) is None
    client, _secret, _ = kiosks.create_kiosk(company_id, "K", "北2条西4丁目")
    db.session.commit()
    page = f"/admin/clients/{client.id}"
    response = browser.form(page, f"{page}/edit", name="K", redirect_uris="",
                            grant_type=[kiosks.DEVICE_CODE, "client_credentials"],
                            scope=["openid", "touch_events", "offline_access"], purpose="p")
    assert response.status_code == 303
    db.session.rollback()
    assert "offline_access" not in db.session.get(Client, client.id).scopes
    refusal = events("admin:action:refused")[-1]
    assert refusal.data["action"] == "client:update"
    assert "offline_access" in refusal.data["reason"]
    assert "cannot have the offline_access scope" in browser.client.get(page).text


def test_rotate_the_secret(browser, client):
    """Test that a new secret is shown once; the old one fails at once, the new one works."""
    rp = factories.rp(grant_types=["client_credentials"], scopes=["touch_events"],
                      redirect_uris=None)
    page = f"/admin/clients/{rp.client_id}"
    response = browser.form(page, f"{page}/rotate-secret")
    assert response.status_code == 200
    new_secret = re.search(r'<code class="mono">([^<]+)</code>', response.text).group(1)
    data = {"grant_type": "client_credentials", "scope": "touch_events"}
    assert client.post("/token", data=data, auth=(rp.client_id, rp.client_secret)
                       ).status_code == 401
    assert client.post("/token", data=data, auth=(rp.client_id, new_secret)).status_code == 200
    assert len(events("client:secret:rotate")) == 1


def test_revoke_a_client_from_the_console(browser):
    """Test revocation by typing the client id; a wrong confirmation does nothing."""
    rp = factories.rp()
    page = f"/admin/clients/{rp.client_id}"
    browser.form(page, f"{page}/revoke", confirm="nope")
    db.session.rollback()
    assert db.session.get(Client, rp.client_id).revoked_at is None
    browser.form(page, f"{page}/revoke", confirm=rp.client_id)
    db.session.rollback()
    assert db.session.get(Client, rp.client_id).revoked_at is not None


def test_kiosk_registration_location_and_last_seen(browser, client):
    """Test kiosks: created on the console, location edited, last contact shown."""
    company_id = factories.company("C社")
    response = browser.form("/admin/kiosks", "/admin/kiosks", company_id=company_id,
                            name="北2条広場サイネージ", location="北2条西4丁目")
    assert response.status_code == 200
    (kiosk,) = kiosks.kiosks()
    page = f"/admin/clients/{kiosk.client_id}"
    assert browser.form(page, f"/admin/kiosks/{kiosk.client_id}/location",
                        location="北3条西4丁目").status_code == 303
    db.session.rollback()
    assert kiosks.kiosk_for(kiosk.client_id).location == "北3条西4丁目"
    kiosks.seen(kiosk.client_id)
    db.session.commit()
    listing = client.get("/admin/kiosks").text
    assert "北3条西4丁目" in listing and kiosk.client_id in listing


# ---- terms, keys, admins ----------------------------------------------------------------------------

def test_publish_terms_makes_residents_accept_at_next_sign_in(browser, client):
    """Test that a version published on the console is in force and residents are asked."""
    factories.resident()
    response = browser.form("/admin/terms", "/admin/terms", version="2026-12",
                            url="https://consortium.example.jp/terms/2026-12",
                            summary="第5条を改定", summary_en="Article 5 revised")
    assert response.status_code == 303
    db.session.rollback()
    assert terms.current().version == "2026-12"
    resident_browser = factories.Browser(client.application.test_client())
    response = resident_browser.login()
    assert "/terms" in response.headers["Location"]


def test_publishing_an_existing_version_is_refused(browser):
    terms.publish_terms("2027-01", summary="改定", summary_en="Revised", actor="test")
    db.session.commit()
    browser.form("/admin/terms", "/admin/terms", version="2027-01")
    assert events("admin:action:refused")[0].data["action"] == "terms:publish"


def test_rotate_and_retire_keys(browser, client):
    """Test key rotation and retirement; a compromised key leaves JWKS at once."""
    client.get("/jwks.json")
    assert browser.form("/admin/keys", "/admin/keys/rotate", mode="now").status_code == 303
    db.session.rollback()
    keys = db.session.scalars(select(SigningKey)).all()
    assert len(keys) == 4
    old = next(k for k in keys if k.retired_at is not None)
    assert old.kid in [k["kid"] for k in client.get("/jwks.json").json["keys"]]
    assert browser.form("/admin/keys", f"/admin/keys/{old.kid}/retire",
                        drop="yes").status_code == 303
    assert old.kid not in [k["kid"] for k in client.get("/jwks.json").json["keys"]]
    (retire,) = events("key:retire")
    assert retire.data["drop"] is True


def test_retiring_the_signing_key_makes_a_new_one_sign(browser, client):
    """Test that retiring the only active RS256 key leaves a key that signs at once."""
    client.get("/jwks.json")
    active = db.session.scalar(select(SigningKey).where(SigningKey.alg == "RS256"))
    browser.form("/admin/keys", f"/admin/keys/{active.kid}/retire")
    db.session.rollback()
    keys = db.session.scalars(select(SigningKey).where(SigningKey.alg == "RS256")).all()
    states = sorted(k.state(utcnow()) for k in keys)
    assert states == ["active", "retired"]


def test_invite_and_disable_an_admin(browser, admin):
    """Test that an invitation shows the one-time link; disabling ends the other's access."""
    response = browser.form("/admin/admins", "/admin/admins", email="new@consortium.example.jp")
    assert response.status_code == 200
    assert re.search(r"/admin/enrol\?token=[\w-]{40,}", response.text)
    invited = db.session.scalar(select(Admin).where(Admin.email == "new@consortium.example.jp"))
    response = browser.form("/admin/admins", f"/admin/admins/{invited.id}/disable")
    assert response.status_code == 303
    db.session.rollback()
    assert db.session.get(Admin, invited.id).status == "disabled"
    # An admin cannot disable themself.
    page = browser.client.get("/admin/admins")
    browser.client.post(f"/admin/admins/{admin.id}/disable", data={
        "csrf_token": hidden(page.text, "csrf_token", "/admin/admins"),
        "form_token": hidden(page.text, "form_token", "/admin/admins")})
    db.session.rollback()
    assert db.session.get(Admin, admin.id).status == "active"
    assert "your own account" in events("admin:action:refused")[-1].data["reason"]


# ---- audit page and dashboard --------------------------------------------------------------------

def test_audit_page_filters_and_exports_csv(browser, client):
    """Test filtering by company and event type, and the CSV export (audited)."""
    factories.resident()
    first = factories.rp()
    second = factories.rp(factories.company("B社"))
    tokens_for(client, first, "openid email")
    tokens_for(client, second, "openid")
    page = client.get("/admin/audit", query_string={"company": first.company_id,
                                                     "tag": "oauth:"})
    assert page.status_code == 200
    rows = tbody(page.text)
    assert first.client_id in rows and second.client_id not in rows
    assert "consent:grant" not in rows
    response = browser.form(f"/admin/audit?company={first.company_id}&tag=oauth:",
                            "/admin/audit/export", buffered=True, company=first.company_id,
                            tag="oauth:")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows and all(r["company_id"] == first.company_id for r in rows)
    assert all(r["tag"].startswith("oauth:") for r in rows)
    # Not sealed yet (idp worker seals): the chain columns are there, still empty.
    assert all(r["seq"] == r["digest"] == "" and r["id"] for r in rows)
    (export,) = events("audit:export")
    assert export.data["filters"] == {"company_id": first.company_id, "tag": "oauth:"}


def test_audit_filter_by_resident_and_time(browser, client):
    """Test the resident (with dashes) and day filters."""
    resident = factories.resident()
    with freeze_time(utcnow() - dt.timedelta(days=3)):
        factories.company("古い会社")
    page = client.get("/admin/audit", query_string={"resident": resident.display_id})
    assert "resident:account:create" in tbody(page.text)
    assert "古い会社" not in tbody(page.text)
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=9))).date()
    page = client.get("/admin/audit", query_string={"from": today.isoformat()})
    assert "古い会社" not in tbody(page.text) and "resident:account:create" in tbody(page.text)
    page = client.get("/admin/audit", query_string={"to": (today - dt.timedelta(days=1))
                                                    .isoformat()})
    assert "古い会社" in tbody(page.text)
    assert client.get("/admin/audit", query_string={"from": "yesterday"}).status_code == 400
    assert client.get("/admin/audit", query_string={"tag": "DROP TABLE"}).status_code == 400


def test_audit_pages_go_back_in_time(browser, client):
    """Test keyset pagination: page two starts where page one ended."""
    for i in range(60):
        factories.clients.create_company(f"会社{i:02d}")
    db.session.commit()
    page = client.get("/admin/audit", query_string={"tag": "company:create"}).text
    link = re.search(r'href="(/admin/audit\?[^"]*before=\d+[^"]*)"', page).group(1)
    first = tbody(page)
    second = tbody(client.get(link.replace("&amp;", "&")).text)
    assert "会社59" in first and "会社00" not in first
    assert "会社00" in second and "会社59" not in second


def test_verify_from_the_console(browser, client):
    """Test that the console runs the verification and shows the head to write down."""
    factories.company()
    response = browser.form("/admin/audit", "/admin/audit/verify")
    assert response.status_code == 200
    assert re.search(r"\d+:[0-9a-f]{64}", response.text)
    assert events("audit:verify")[0].data["ok"] is True


def test_dashboard_draws_charts_without_javascript(browser, client):
    """Test that the dashboard has the six counts and five inline SVG charts, no script."""
    factories.resident()
    rp = factories.rp()
    tokens_for(client, rp, "openid email")
    page = client.get("/admin/", query_string={"days": 7})
    assert page.status_code == 200
    assert page.text.count("<svg class=\"chart-svg\"") == 5
    assert "<script" not in page.text and "style=" not in page.text
    assert "<polyline" in page.text and "<rect" in page.text
    data = page.text.split('class="data"')
    assert len(data) >= 6


def test_pages_render_in_english_too(browser, client):
    """Test that the console follows the language switch."""
    client.get("/lang/en?next=/admin/")
    page = client.get("/admin/")
    assert 'lang="en"' in page.text and "Dashboard" in page.text


def test_every_console_page_renders(browser, client):
    """Test that each section answers 200 for a signed-in admin."""
    rp = factories.rp()
    resident = factories.resident()
    for path in ("/admin/", "/admin/companies", f"/admin/companies/{rp.company_id}",
                 "/admin/clients", f"/admin/clients/{rp.client_id}", "/admin/clients/new",
                 "/admin/kiosks", "/admin/terms", "/admin/keys", "/admin/audit",
                 "/admin/reports", f"/admin/reports?company={rp.company_id}",
                 "/admin/city-data", "/admin/city-data?month=2026-10",
                 "/admin/proofing", f"/admin/proofing?q={resident.id}", "/admin/admins"):
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("settings_overrides", [{"admin_reauth_window": 60}])
def test_reauth_window_setting_is_honoured(client, settings_overrides):
    """Test that admin_reauth_window governs when destructive actions ask again."""
    admin = enrolled_admin()
    company_id = factories.company()
    browser = AdminBrowser(client, admin)
    with freeze_time(utcnow()) as frozen:
        browser.login()
        frozen.tick(dt.timedelta(seconds=61))
        response = browser.form(f"/admin/companies/{company_id}",
                                f"/admin/companies/{company_id}/suspend", confirm="yes")
        assert "/admin/reauth" in response.headers["Location"]
        next_step(frozen)
        browser.reauth(code=admin.code())
        frozen.tick(dt.timedelta(seconds=30))
        response = browser.form(f"/admin/companies/{company_id}",
                                f"/admin/companies/{company_id}/suspend", confirm="yes")
        assert "/admin/reauth" not in response.headers["Location"]
    assert company(company_id).status == "suspended"


# ---- sensors ------------------------------------------------------------------------------------

def test_sensor_registration_on_the_console(browser, client):
    """Test sensors: registered on the console (secret shown once), listed with their place."""
    company_id = factories.company("C社")
    response = browser.form("/admin/sensors", "/admin/sensors", company_id=company_id,
                            name="人流センサー", location="北2条西4丁目", latitude="43.0632",
                            longitude="141.3537", area="広場北側", retention_days="90",
                            contact="c@example.jp")
    assert response.status_code == 200
    db.session.rollback()
    (sensor,) = sensors.sensors()
    assert (sensor.latitude, sensor.longitude, sensor.retention_days) == (43.0632, 141.3537, 90)
    assert sensor.client.scopes == ["sensor_counts"]
    listing = client.get("/admin/sensors").text
    assert "北2条西4丁目" in listing and sensor.client_id in listing and "広場北側" in listing
    assert any(e.tag == "sensor:create" and e.actor == "admin" for e in events())


@pytest.mark.parametrize(("fields", "reason"), [
    ({"latitude": "43.06"}, "both latitude and longitude"),
    ({"latitude": "north", "longitude": "141"}, "must be numbers"),
    ({"retention_days": "0"}, "retention"),
    ({"retention_days": "many"}, "retention"),
    ({"location": ""}, "location"),
])
def test_sensor_registration_refusals_change_nothing(browser, fields, reason):
    """Test that a refused registration makes no client and says why."""
    company_id = factories.company("C社")
    data = {"company_id": company_id, "name": "x", "location": "広場", "retention_days": "365",
            **fields}
    response = browser.form("/admin/sensors", "/admin/sensors", **data)
    assert response.status_code == 303  # back to the page, which says why
    db.session.rollback()
    assert sensors.sensors() == []
    refusal = [e for e in events() if e.tag == "admin:action:refused"][-1]
    assert reason in refusal.data["reason"]


def test_kiosk_registration_with_coordinates(browser):
    """Test that a kiosk registered on the console can be placed on the public map."""
    company_id = factories.company("C社")
    browser.form("/admin/kiosks", "/admin/kiosks", company_id=company_id, name="サイネージ",
                 location="北2条西4丁目", latitude="43.0632", longitude="141.3537",
                 contact="c@example.jp")
    db.session.rollback()
    (kiosk,) = kiosks.kiosks()
    assert (kiosk.latitude, kiosk.longitude, kiosk.contact) == (43.0632, 141.3537,
                                                                 "c@example.jp")
