"""Email verification: signed, expiring, single-use links; changes of address wait for them."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.accounts import service as accounts
from idp.accounts.models import Resident
from idp.db import utcnow
from idp.extensions import db
from tests import factories
from tests.helpers.accounts import link_in
from tests.helpers.accounts import mails_to
from tests.helpers.accounts import outbox
from tests.helpers.accounts import post_form
from tests.helpers.accounts import sign_in
from tests.helpers.accounts import tags
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo

OLD = "hanako@example.jp"
NEW = "hanako.new@example.jp"


def resident_row() -> Resident:
    """The only resident not created as a bystander (the first row created)."""
    db.session.expire_all()
    return db.session.scalar(select(Resident).order_by(Resident.created_at).limit(1))


@pytest.fixture
def unverified(app):
    """A resident an operator created, whose address is not verified yet."""
    row = accounts.create_resident(OLD, factories.PASSWORD, email_verified=False)
    db.session.commit()
    return row


@pytest.fixture
def resident(app):
    return factories.resident(OLD)


def verify_link(address: str) -> str:
    (message,) = [m for m in mails_to(address) if "/verify-email" in m.body]
    return link_in(message, "/verify-email")


def confirm(client, link: str):
    page = client.get(link)
    assert page.status_code == 200, page.text
    token = parse_qs(urlsplit(link).query)["token"][0]
    return client.post("/verify-email", data={"token": token,
                                              "csrf_token": factories.csrf(page.text)})


def ask_change(client, new=NEW, password=factories.PASSWORD):
    return post_form(client, "/account/email", {"new_email": new, "password": password})


def test_unverified_address_is_shown_and_a_link_can_be_requested(client, unverified):
    """Test that the account page says 'not verified' and the resend button mails a link."""
    sign_in(client)
    page = client.get("/account")
    assert "未確認" in page.text
    response = post_form(client, "/account", {}, action="/account/email/resend")
    assert response.status_code == 303
    assert verify_link(OLD).startswith("/verify-email?token=")
    assert resident_row().email_verified is False


def test_following_the_link_verifies_the_address(client, unverified):
    """Test that the link's page, then its button, sets email_verified and audits it."""
    sign_in(client)
    post_form(client, "/account", {}, action="/account/email/resend")
    response = confirm(client, verify_link(OLD))
    assert response.status_code == 200
    assert resident_row().email_verified is True
    assert [e.resident_id for e in tags("resident:email:verify")] == [resident_row().id]


def test_opening_the_link_alone_changes_nothing(client, unverified):
    """Test that GET on the link (as a mail scanner would) neither verifies nor uses it up."""
    sign_in(client)
    post_form(client, "/account", {}, action="/account/email/resend")
    link = verify_link(OLD)
    assert client.get(link).status_code == 200
    assert client.get(link).status_code == 200
    assert resident_row().email_verified is False


def test_link_works_without_being_signed_in(client, unverified):
    """Test that the link verifies in a browser with no session (the mail app's browser)."""
    sign_in(client)
    post_form(client, "/account", {}, action="/account/email/resend")
    link = verify_link(OLD)
    client.post("/logout", data={"csrf_token": factories.csrf(client.get("/").text)})
    assert confirm(client, link).status_code == 200
    assert resident_row().email_verified is True


def test_link_works_once(client, unverified):
    """Test that a second use of a verification link answers 'already used'."""
    sign_in(client)
    post_form(client, "/account", {}, action="/account/email/resend")
    link = verify_link(OLD)
    confirm(client, link)
    again = client.get(link)
    assert again.status_code == 400
    assert "すでに使用" in again.text


def test_link_expires(app, client, unverified):
    """Test that a verification link older than email_link_ttl is refused and verifies nothing."""
    ttl = app.extensions["idp.settings"].email_link_ttl
    start = utcnow()
    with freeze_time(start):
        sign_in(client)
        post_form(client, "/account", {}, action="/account/email/resend")
    link = verify_link(OLD)
    with freeze_time(start + dt.timedelta(seconds=ttl + 1)):
        response = client.get(link)
        assert response.status_code == 400
        assert "有効期限" in response.text
        token = parse_qs(urlsplit(link).query)["token"][0]
        page = client.get("/password/reset")
        assert client.post("/verify-email", data={
            "token": token, "csrf_token": factories.csrf(page.text)}).status_code == 400
    assert resident_row().email_verified is False


def test_tampered_link_is_invalid(client, unverified):
    """Test that a changed token is refused as invalid."""
    sign_in(client)
    post_form(client, "/account", {}, action="/account/email/resend")
    link = verify_link(OLD)
    response = client.get(link[:-3] + ("xyz" if not link.endswith("xyz") else "abc"))
    assert response.status_code == 400
    assert "無効" in response.text


def test_verification_post_without_csrf_changes_nothing(client, unverified):
    """Test that the verification form without a CSRF token is refused."""
    sign_in(client)
    post_form(client, "/account", {}, action="/account/email/resend")
    token = parse_qs(urlsplit(verify_link(OLD)).query)["token"][0]
    assert client.post("/verify-email", data={"token": token}).status_code == 400
    assert resident_row().email_verified is False


def test_verified_address_needs_no_link(client, resident):
    """Test that asking for a link for a verified address sends nothing."""
    sign_in(client)
    response = post_form(client, "/account", {}, action="/account/email/resend")
    assert response.status_code == 303
    assert outbox() == []


# ---- changing the address ---------------------------------------------------------

def test_change_waits_for_the_new_address_to_be_verified(client, resident):
    """Test that a change keeps the old address (and userinfo) until the new one's link is used."""
    rp = factories.rp()
    issued = tokens_for(client, rp, scope="openid email")
    response = ask_change(client)
    assert response.status_code == 303
    row = resident_row()
    assert (row.email, row.pending_email, row.email_verified) == (OLD, NEW, True)
    assert userinfo(client, issued["access_token"]).json["email"] == OLD
    page = client.get("/account")
    assert NEW in page.text and "確認待ち" in page.text
    confirm(client, verify_link(NEW))
    row = resident_row()
    assert (row.email, row.pending_email, row.email_verified) == (NEW, None, True)
    claims = userinfo(client, issued["access_token"]).json
    assert (claims["email"], claims["email_verified"]) == (NEW, True)
    assert [e.resident_id for e in tags("resident:email:change")] == [resident_row().id]


def test_old_address_is_told_after_the_change(client, resident):
    """Test that the old address receives a notice once the change is complete."""
    sign_in(client)
    ask_change(client)
    confirm(client, verify_link(NEW))
    (notice,) = mails_to(OLD)
    assert "/password/reset" in notice.body


def test_new_address_signs_in_after_the_change(client, resident):
    """Test that sign-in works with the new address and not with the old one."""
    sign_in(client)
    ask_change(client)
    confirm(client, verify_link(NEW))
    client.post("/logout", data={"csrf_token": factories.csrf(client.get("/").text)})
    assert factories.Browser(client).login(OLD).status_code == 401
    assert factories.Browser(client).login(NEW).status_code == 302


def test_change_needs_the_current_password(client, resident):
    """Test that a wrong password refuses the change: nothing pending, nothing mailed."""
    sign_in(client)
    response = ask_change(client, password="wrong password")
    assert response.status_code == 400
    assert 'id="password-error"' in response.text
    assert resident_row().pending_email is None
    assert outbox() == []


@pytest.mark.parametrize("new", ["", "nope", "x" * 255 + "@example.jp", OLD])
def test_invalid_or_same_address_is_refused(client, resident, new):
    """Test that an invalid, oversized or unchanged address is answered 400 and changes nothing."""
    sign_in(client)
    response = ask_change(client, new=new)
    assert response.status_code == 400
    assert resident_row().pending_email is None
    assert outbox() == []


def test_address_of_another_id_is_not_revealed(client, resident):
    """Test that an address used by another ID gets the same answer; its owner gets a notice, no link."""
    factories.resident("jiro@example.jp")
    sign_in(client)
    taken = ask_change(client, new="jiro@example.jp")
    free = ask_change(client, new="saburo@example.jp")
    assert taken.status_code == free.status_code == 303
    (owner_notice,) = mails_to("jiro@example.jp")
    assert "/verify-email" not in owner_notice.body
    assert [m.to for m in outbox()] == ["jiro@example.jp", "saburo@example.jp"]


def test_address_taken_before_verification_is_refused(client, resident):
    """Test that a new address registered by someone else before the link is used stays unchanged."""
    sign_in(client)
    ask_change(client)
    link = verify_link(NEW)
    factories.resident(NEW)
    response = confirm(client, link)
    assert response.status_code == 409
    assert resident_row().email == OLD


def test_older_link_dies_when_another_address_is_asked_for(client, resident):
    """Test that a pending change's link stops working when the resident asks for another address."""
    sign_in(client)
    ask_change(client)
    first = verify_link(NEW)
    ask_change(client, new="third@example.jp")
    response = client.get(first)
    assert response.status_code == 400
    assert resident_row().pending_email == "third@example.jp"


def test_cancelled_change_link_no_longer_works(client, resident):
    """Test that cancelling a pending change makes its link useless."""
    sign_in(client)
    ask_change(client)
    link = verify_link(NEW)
    post_form(client, "/account", {}, action="/account/email/cancel")
    assert resident_row().pending_email is None
    assert client.get(link).status_code == 400


def test_change_form_needs_csrf_and_a_session(client, resident):
    """Test that the change form refuses posts without CSRF, and sends anonymous visitors to login."""
    assert client.get("/account/email").status_code == 303
    sign_in(client)
    assert client.post("/account/email", data={"new_email": NEW,
                                               "password": factories.PASSWORD}).status_code == 400
    assert resident_row().pending_email is None


@pytest.mark.parametrize("settings_overrides", [{"account_mail_limit": "2 per hour"}])
def test_resending_is_rate_limited_per_resident(client, unverified, settings_overrides):
    """Test that a signed-in resident cannot flood their mailbox with verification links."""
    sign_in(client)
    for expected in (303, 303, 429):
        response = post_form(client, "/account", {}, action="/account/email/resend")
        assert response.status_code == expected
    assert len(outbox()) == 2
