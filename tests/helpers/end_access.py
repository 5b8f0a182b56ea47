"""The paths that end a resident's access, one function each, driven the way an operator
or a resident takes them (web page, console, CLI): the table that
``tests/flows/logout/test_end_access_paths.py`` (logout tokens) and
``tests/flows/security_events/test_security_events.py`` (security events) both walk.
Each takes ``(client, rp, cli, issued)``; ``PATHS`` pairs it with the reason it is
audited with."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlsplit

from sqlalchemy import select

from idp.accounts.models import Resident
from idp.extensions import db
from idp.terms import service as terms
from tests import factories
from tests.helpers.accounts import link_in
from tests.helpers.accounts import mails_to
from tests.helpers.accounts import post_form
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.oauth import ResidentBrowser


def admin_browser(client) -> AdminBrowser:
    browser = AdminBrowser(client.application.test_client(), enrolled_admin())
    browser.login()
    return browser


def ok(result) -> None:
    assert result.exit_code == 0, result.output


def password_reset(client, rp, cli, issued):
    stranger = client.application.test_client()
    post_form(stranger, "/password/reset", {"email": "hanako@example.jp"})
    (message,) = [m for m in mails_to("hanako@example.jp") if "/password/reset/confirm" in m.body]
    link = link_in(message, "/password/reset/confirm")
    page = stranger.get(link)
    response = stranger.post("/password/reset/confirm", data={
        "token": parse_qs(urlsplit(link).query)["token"][0],
        "new_password": "new winter password", "new_password_confirm": "new winter password",
        "csrf_token": factories.csrf(page.text)})
    assert response.status_code == 200


def password_change(client, rp, cli, issued):
    """The session that signed the client in is another browser's; this one stays."""
    mine = client.application.test_client()
    ResidentBrowser(mine).login()
    response = post_form(mine, "/account/password", {
        "current_password": factories.PASSWORD, "new_password": "new winter password",
        "new_password_confirm": "new winter password"})
    assert response.status_code == 303


def deletion(client, rp, cli, issued):
    response = post_form(client, "/account/delete", {"password": factories.PASSWORD})
    assert response.status_code == 200


def terms_decline(client, rp, cli, issued):
    terms.publish_terms("2027-01", "https://consortium.example.jp/terms/2027-01",
                        summary="第5条を変更しました。", summary_en="Article 5 changed.")
    db.session.commit()
    page = client.get("/terms")
    response = client.post("/terms", data={"decision": "decline", "version": "2027-01",
                                           "csrf_token": factories.csrf(page.text)})
    assert response.status_code == 200


def console_sign_out(client, rp, cli, issued):
    resident = db.session.scalar(select(Resident))
    response = admin_browser(client).form(f"/admin/proofing?q={resident.id}",
                                          f"/admin/proofing/{resident.id}/sign-out")
    assert response.status_code == 303


def cli_sign_out(client, rp, cli, issued):
    ok(cli("users", "sign-out", "--email", "hanako@example.jp", "--json"))


def sign_out(client, rp, cli, issued):
    home = client.get("/account")
    response = client.post("/logout", data={"csrf_token": factories.csrf(home.text),
                                            "confirm": "yes"})
    assert response.status_code == 200


def rp_initiated_logout(client, rp, cli, issued):
    client.get("/logout", query_string={"id_token_hint": issued["id_token"]})


def consent_withdrawal(client, rp, cli, issued):
    response = post_form(client, "/account/consents", {"client_id": rp.client_id, "confirm": "yes"})
    assert response.status_code == 303


def item_stopped(client, rp, cli, issued):
    """The resident keeps the consent but stops sharing one item (``email``) with the
    service: the token carrying it is revoked (``narrow_grants``), so the session it
    was issued in is told, as for any other cut-off."""
    response = post_form(client, "/account/consents", {
        "client_id": rp.client_id, "item": "email", "confirm": "yes"},
        action="/account/consents/item")
    assert response.status_code == 303


def client_revoked(client, rp, cli, issued):
    response = admin_browser(client).form(f"/admin/clients/{rp.client_id}",
                                          f"/admin/clients/{rp.client_id}/revoke",
                                          confirm=rp.client_id)
    assert response.status_code == 303


def company_suspended(client, rp, cli, issued):
    ok(cli("companies", "suspend", rp.company_id))


def company_revoked(client, rp, cli, issued):
    ok(cli("companies", "revoke", rp.company_id, "--yes"))


def client_narrowed(client, rp, cli, issued):
    """The token carries `email`; the edit takes `email` away from the client."""
    ok(cli("clients", "update", rp.client_id, "--scope", "openid", "--scope", "name"))


def secret_rotated(client, rp, cli, issued):
    ok(cli("clients", "rotate-secret", rp.client_id, "--revoke-tokens"))


PATHS = [
    (password_reset, "password_reset"),
    (password_change, "password_change"),
    (deletion, "account_deleted"),
    (terms_decline, "terms_declined"),
    (console_sign_out, "admin"),
    (cli_sign_out, "admin"),
    (sign_out, "logout"),
    (rp_initiated_logout, "logout"),
    (consent_withdrawal, "consent_withdrawn"),
    (item_stopped, "consent_narrowed"),
    (client_revoked, "client_revoked"),
    (company_suspended, "company_suspended"),
    (company_revoked, "company_revoked"),
    (client_narrowed, "client_narrowed"),
    (secret_rotated, "client_secret_rotated"),
]
