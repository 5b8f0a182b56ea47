"""Password reset by email link, password change, and what each one ends."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.access.models import BrowserSession
from idp.accounts import passwords
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
from tests.helpers.oauth import introspect
from tests.helpers.oauth import refresh
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo

EMAIL = "hanako@example.jp"
NEW_PASSWORD = "new winter password"


@pytest.fixture
def resident(app):
    return factories.resident(EMAIL)


def ask_reset(client, email=EMAIL):
    return post_form(client, "/password/reset", {"email": email})


def reset_link() -> str:
    (message,) = [m for m in mails_to(EMAIL) if "/password/reset/confirm" in m.body][-1:]
    return link_in(message, "/password/reset/confirm")


def choose(client, link: str, password=NEW_PASSWORD, confirm=None):
    page = client.get(link)
    assert page.status_code == 200, page.text
    token = parse_qs(urlsplit(link).query)["token"][0]
    return client.post("/password/reset/confirm", data={
        "token": token, "new_password": password,
        "new_password_confirm": password if confirm is None else confirm,
        "csrf_token": factories.csrf(page.text)})


def stored_hash() -> str:
    db.session.expire_all()
    return db.session.scalar(select(Resident.password_hash).where(Resident.email == EMAIL))


def test_registered_and_unknown_addresses_get_the_same_answer(client, resident):
    """Test that the reset request page is the same for a registered and an unknown address."""
    known = ask_reset(client)
    unknown = ask_reset(client, "nobody@example.jp")
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(EMAIL, "X") == unknown.text.replace("nobody@example.jp", "X")


def test_each_request_sends_one_mail_link_only_to_a_registered_address(client, resident):
    """Test that a registered address gets the link and an unknown one a notice without a link."""
    ask_reset(client)
    ask_reset(client, "nobody@example.jp")
    assert [m.to for m in outbox()] == [EMAIL, "nobody@example.jp"]
    assert reset_link().startswith("/password/reset/confirm?token=")
    (notice,) = mails_to("nobody@example.jp")
    assert "/password/reset/confirm" not in notice.body
    assert "/register" in notice.body


def test_reset_sets_the_new_password(client, resident):
    """Test that the link's form changes the password: the new one signs in, the old one does not."""
    ask_reset(client)
    response = choose(client, reset_link())
    assert response.status_code == 200
    assert passwords.verify(stored_hash(), NEW_PASSWORD)
    assert factories.Browser(client).login(EMAIL, factories.PASSWORD).status_code == 401
    assert factories.Browser(client).login(EMAIL, NEW_PASSWORD).status_code == 302
    assert len(tags("resident:password:reset")) == 1


def test_reset_ends_every_session_and_token(client, resident):
    """Test that a reset signs every browser out and makes every token inactive at once."""
    rp = factories.rp()
    issued = tokens_for(client, rp, scope="openid email offline_access")
    assert introspect(client, rp, issued["access_token"]).json["active"] is True
    ask_reset(client)
    choose(client, reset_link())
    assert client.get("/account").status_code == 303  # this browser was signed in: no more
    assert db.session.scalar(select(BrowserSession).where(
        BrowserSession.ended_at.is_(None))) is None
    assert introspect(client, rp, issued["access_token"]).json == {"active": False}
    assert introspect(client, rp, issued["refresh_token"]).json == {"active": False}
    assert userinfo(client, issued["access_token"]).status_code == 401
    assert refresh(client, rp, issued["refresh_token"]).json["error"] == "invalid_grant"
    event = tags("resident:password:reset")[0]
    assert event.data["tokens_revoked"] >= 1 and event.data["sessions_ended"] == 1


def test_code_issued_before_a_reset_cannot_be_redeemed(client, resident):
    """Test that an authorization code not yet redeemed dies with the reset."""
    rp = factories.rp()
    verifier, challenge = factories.pkce_pair()
    result = factories.Browser(client).code_flow(rp, code_challenge=challenge,
                                                 code_challenge_method="S256")
    ask_reset(client)
    choose(client, reset_link())
    response = factories.exchange(client, rp, result["code"], verifier)
    assert response.json["error"] == "invalid_grant"


def test_resident_is_told_the_password_changed(client, resident):
    """Test that a notice goes to the address after the reset."""
    ask_reset(client)
    choose(client, reset_link())
    assert len(mails_to(EMAIL)) == 2
    assert "/password/reset" in mails_to(EMAIL)[-1].body


def test_link_works_once(client, resident):
    """Test that a used reset link is refused the second time, and the password stays."""
    ask_reset(client)
    link = reset_link()
    choose(client, link)
    response = client.get(link)
    assert response.status_code == 400
    assert "すでに使用" in response.text
    assert passwords.verify(stored_hash(), NEW_PASSWORD)


def test_link_expires(app, client, resident):
    """Test that a reset link older than password_reset_ttl answers 'expired' and changes nothing."""
    ttl = app.extensions["idp.settings"].password_reset_ttl
    start = utcnow()
    with freeze_time(start):
        ask_reset(client)
    link = reset_link()
    before = stored_hash()
    with freeze_time(start + dt.timedelta(seconds=ttl - 30)):
        assert client.get(link).status_code == 200
    with freeze_time(start + dt.timedelta(seconds=ttl + 1)):
        response = client.get(link)
        assert response.status_code == 400
        assert "有効期限" in response.text
        token = parse_qs(urlsplit(link).query)["token"][0]
        page = client.get("/password/reset")
        assert client.post("/password/reset/confirm", data={
            "token": token, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD,
            "csrf_token": factories.csrf(page.text)}).status_code == 400
    assert stored_hash() == before


def test_using_one_link_kills_the_others(client, resident):
    """Test that after a reset, an older unused reset link is dead (the password it was for changed)."""
    ask_reset(client)
    first = reset_link()
    ask_reset(client)
    second = reset_link()
    assert first != second
    choose(client, second)
    assert client.get(first).status_code == 400


def test_changing_the_password_on_the_account_page_kills_reset_links(client, resident):
    """Test that a reset link stops working once the password is changed another way."""
    ask_reset(client)
    link = reset_link()
    sign_in(client)
    post_form(client, "/account/password", {"current_password": factories.PASSWORD,
                                            "new_password": NEW_PASSWORD,
                                            "new_password_confirm": NEW_PASSWORD})
    assert client.get(link).status_code == 400


@pytest.mark.parametrize(("password", "confirm", "field"), [
    ("short", None, "new_password"),
    (EMAIL, None, "new_password"),
    (NEW_PASSWORD, "something else", "new_password_confirm"),
    ("x" * 1025, None, "new_password"),
])
def test_weak_or_mismatched_password_is_refused_and_the_link_survives(client, resident, password,
                                                                       confirm, field):
    """Test that a bad new password is explained, changes nothing, and leaves the link usable."""
    ask_reset(client)
    link = reset_link()
    before = stored_hash()
    response = choose(client, link, password, confirm)
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.text
    assert stored_hash() == before
    assert client.get(link).status_code == 200


def test_reset_post_without_csrf_changes_nothing(client, resident):
    """Test that the reset form without CSRF is refused."""
    assert client.post("/password/reset", data={"email": EMAIL}).status_code == 400
    assert outbox() == []
    ask_reset(client)
    token = parse_qs(urlsplit(reset_link()).query)["token"][0]
    before = stored_hash()
    response = client.post("/password/reset/confirm", data={
        "token": token, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD})
    assert response.status_code == 400
    assert stored_hash() == before


@pytest.mark.parametrize("settings_overrides", [{"account_mail_limit": "2 per hour"}])
def test_requests_for_one_address_are_rate_limited(client, resident, settings_overrides):
    """Test that one address cannot be flooded with reset mail."""
    assert ask_reset(client).status_code == 200
    assert ask_reset(client).status_code == 200
    assert ask_reset(client).status_code == 429
    assert len(outbox()) == 2


# ---- change password (signed in) ----------------------------------------------------------

def change(client, current=factories.PASSWORD, new=NEW_PASSWORD, confirm=None):
    return post_form(client, "/account/password", {
        "current_password": current, "new_password": new,
        "new_password_confirm": new if confirm is None else confirm})


def test_change_needs_the_current_password(client, resident):
    """Test that a wrong current password changes nothing."""
    sign_in(client)
    before = stored_hash()
    response = change(client, current="wrong password")
    assert response.status_code == 400
    assert 'id="current_password-error"' in response.text
    assert stored_hash() == before
    assert tags("resident:password:change") == []


def test_change_keeps_this_session_and_ends_the_others(app, client, resident):
    """Test that after a change this browser stays signed in and another browser is signed out."""
    other = app.test_client()
    sign_in(other)
    sign_in(client)
    response = change(client)
    assert response.status_code == 303
    assert passwords.verify(stored_hash(), NEW_PASSWORD)
    assert client.get("/account").status_code == 200
    assert other.get("/account").status_code == 303
    assert tags("resident:password:change")[0].data == {"sessions_ended": 1}
    assert "/password/reset" in mails_to(EMAIL)[-1].body


def test_change_without_csrf_is_refused(client, resident):
    """Test that the change form without CSRF is refused."""
    sign_in(client)
    before = stored_hash()
    assert client.post("/account/password", data={
        "current_password": factories.PASSWORD, "new_password": NEW_PASSWORD,
        "new_password_confirm": NEW_PASSWORD}).status_code == 400
    assert stored_hash() == before
