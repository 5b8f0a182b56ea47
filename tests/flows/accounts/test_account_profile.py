"""/account and /account/profile: the resident sees and edits their own registered information."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from idp.accounts.models import Resident
from idp.extensions import db
from tests import factories
from tests.helpers.accounts import Inputs
from tests.helpers.accounts import post_form
from tests.helpers.accounts import sign_in
from tests.helpers.accounts import tags
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo

EMAIL = "hanako@example.jp"
PROFILE = {"family_name": "札幌", "given_name": "花子", "family_name_kana": "サッポロ",
           "given_name_kana": "ハナコ", "birth_year": "1990", "gender": "female",
           "postal_code": "060-0042", "locality": "札幌市中央区"}
ACCOUNT_PAGES = ["/account", "/account/profile", "/account/email", "/account/password",
                 "/account/security", "/account/security/totp", "/account/consents",
                 "/account/history", "/account/delete"]


@pytest.fixture
def resident(app):
    return factories.resident(EMAIL)


def row() -> Resident:
    db.session.expire_all()
    return db.session.scalar(select(Resident).where(Resident.email == EMAIL))


def save(client, **changes):
    return post_form(client, "/account/profile", {**PROFILE, **changes})


@pytest.mark.parametrize("path", ACCOUNT_PAGES + ["/account/export"])
def test_account_pages_need_a_sign_in_and_come_back_after_it(client, resident, path):
    """Test that each account page sends anonymous visitors to login, which returns them there."""
    response = client.get(path)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/login?next=")
    page = client.get(location)
    back = client.post("/login", data={"email": EMAIL, "password": factories.PASSWORD,
                                       "next": path, "csrf_token": factories.csrf(page.text)})
    assert back.headers["Location"] == path


@pytest.mark.parametrize("path", ACCOUNT_PAGES)
def test_account_pages_label_every_field_and_use_no_inline_code(client, resident, path):
    """Test that every account page labels each field and has no inline script or style."""
    sign_in(client)
    page = client.get(path)
    assert page.status_code == 200
    assert Inputs(page.text).unlabelled() == []
    assert no_inline_code(page.text)


@pytest.mark.parametrize("path", ACCOUNT_PAGES)
def test_account_pages_have_english(client, resident, path):
    """Test that every account page is rendered in English after the language switch."""
    sign_in(client)
    client.get("/lang/en")
    page = client.get(path)
    assert '<html lang="en">' in page.text
    assert "アカウントに戻る" not in page.text and "ログアウト" not in page.text


def test_overview_shows_the_consortium_id(client, resident):
    """Test that /account shows the consortium ID, the address and that it is verified."""
    sign_in(client)
    page = client.get("/account")
    assert resident.display_id in page.text
    assert EMAIL in page.text and "確認済み" in page.text
    assert "各サービスでのデータ利用" in page.text


def test_profile_page_shows_the_current_values(client, resident):
    """Test that the edit form is filled in with the registered values."""
    sign_in(client)
    page = client.get("/account/profile")
    for value in ("札幌", "ハナコ", "1990", "060-0042", "札幌市中央区"):
        assert f'value="{value}"' in page.text
    assert 'id="gender-female" name="gender" value="female" checked' in page.text


def test_change_is_saved_and_audited_without_values(client, resident):
    """Test that a change is stored and audited with the field names only."""
    sign_in(client)
    response = save(client, postal_code="０６００００１", locality="札幌市北区")
    assert response.status_code == 303
    assert (row().postal_code, row().locality) == ("060-0001", "札幌市北区")
    (event,) = tags("resident:profile:change")
    assert event.data == {"fields": ["locality", "postal_code"]}
    assert "札幌市北区" not in str(event.data)


def test_change_reaches_companies_at_their_next_userinfo_call(client, resident):
    """Test that userinfo with an existing token shows the new values right after the change."""
    rp = factories.rp()
    issued = tokens_for(client, rp, scope="openid name postal_code")
    before = userinfo(client, issued["access_token"]).json
    assert before["address"] == {"postal_code": "060-0042", "locality": "札幌市中央区"}
    save(client, family_name="函館", postal_code="040-0001", locality="函館市")
    after = userinfo(client, issued["access_token"]).json
    assert after["family_name"] == "函館"
    assert after["address"] == {"postal_code": "040-0001", "locality": "函館市"}
    assert after["sub"] == before["sub"]


def test_clearing_an_item_stops_it_being_released(client, resident):
    """Test that an emptied optional item is stored as nothing and left out of userinfo."""
    rp = factories.rp()
    issued = tokens_for(client, rp, scope="openid gender birth_year")
    save(client, gender="", birth_year="")
    assert (row().gender, row().birth_year) == (None, None)
    assert set(userinfo(client, issued["access_token"]).json) == {"sub"}


def test_unchanged_form_writes_nothing(client, resident):
    """Test that saving the same values writes no audit event."""
    sign_in(client)
    assert save(client).status_code == 303
    assert tags("resident:profile:change") == []
    assert "変更はありませんでした" in client.get("/account").text


@pytest.mark.parametrize(("field", "value"), [
    ("postal_code", "0600-042"), ("postal_code", "abc-defg"), ("birth_year", "1700"),
    ("birth_year", "20xx"), ("family_name", "x" * 101), ("given_name_kana", "hanako"),
    ("locality", "市" * 101), ("gender", "unknown"), ("family_name", "長" * 5000),
])
def test_bad_input_changes_nothing(client, resident, field, value):
    """Test that an invalid or oversized value answers 400 with its message and keeps every value."""
    sign_in(client)
    before = {k: getattr(row(), k) for k in PROFILE}
    response = save(client, **{"locality": "札幌市北区", field: value})
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.text
    assert {k: getattr(row(), k) for k in PROFILE} == before
    assert tags("resident:profile:change") == []


def test_post_without_csrf_changes_nothing(client, resident):
    """Test that a profile post without a CSRF token is refused."""
    sign_in(client)
    response = client.post("/account/profile", data={**PROFILE, "locality": "札幌市北区"})
    assert response.status_code == 400
    assert row().locality == "札幌市中央区"


def test_get_changes_nothing(client, resident):
    """Test that the profile page's query string is not a way to change anything."""
    sign_in(client)
    client.get("/account/profile", query_string={"locality": "札幌市北区"})
    assert row().locality == "札幌市中央区"


def test_home_page_links_to_the_account_and_registration(client, resident):
    """Test that the home page offers registration when signed out and the account when signed in."""
    assert "/register" in client.get("/").text
    assert "/password/reset" in client.get("/login").text
    sign_in(client)
    assert "/account" in client.get("/").text


@pytest.mark.parametrize("path", ["/register", "/password/reset", "/terms", "/login"])
def test_public_pages_label_every_field_and_use_no_inline_code(client, resident, path):
    """Test that the pages reachable without a session label each field and have no inline code."""
    page = client.get(path)
    assert page.status_code == 200
    assert Inputs(page.text).unlabelled() == []
    assert no_inline_code(page.text)


def no_inline_code(html: str) -> bool:
    """No inline script or style: a script only from our own /static (passkeys.js)."""
    return not re.search(r'<script(?![^>]*\ssrc="/static/[a-z]+\.js")', html) \
        and "style=" not in html and "<script>" not in html


@pytest.mark.parametrize("value", ["札幌\x00", "a\x07b", "\u200e札幌"])
def test_control_characters_are_refused(client, resident, value):
    """Test that control characters (NUL, which PostgreSQL refuses, and others) never reach the database."""
    sign_in(client)
    response = save(client, family_name=value)
    assert response.status_code == 400
    if "\x00" not in value:  # NUL is refused for every request, before any form (idp.inputs)
        assert 'id="family_name-error"' in response.text
    assert row().family_name == "札幌"


def test_junk_in_email_fields_is_refused_everywhere(client, resident):
    """Test that an address with NUL is refused at sign-in, registration and reset, without a 500."""
    page = client.get("/login")
    response = client.post("/login", data={"email": "hanako\x00@example.jp",
                                           "password": factories.PASSWORD,
                                           "csrf_token": factories.csrf(page.text)})
    assert response.status_code == 400  # idp.inputs refuses NUL in any value
    for path in ("/register", "/password/reset"):
        assert post_form(client, path, {"email": "a\x00b@example.jp"}).status_code == 400
