"""The consent screen's own behaviour (issue 15): what it ticks by default, what it
shows for each item, and what a resident sees on coming back to a finished sign-in."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from idp.accounts.models import Resident
from idp.consent import service as consent_service
from idp.extensions import db
from tests import factories
from tests.factories import Browser
from tests.helpers.accounts import Inputs

HOME = "https://rp.example.jp/"


@pytest.fixture
def rp(app):
    factories.resident()
    return factories.rp(client_uri=HOME)


def pkce():
    _, challenge = factories.pkce_pair()
    return {"code_challenge": challenge, "code_challenge_method": "S256"}


def consent_path(client, browser, rp, scope="openid name email", **params) -> str:
    """Sign in (if needed) and return the consent page's path."""
    response = browser.authorize(rp, scope=scope, **pkce(), **params)
    location = response.headers["Location"]
    if urlsplit(location).path == "/login":
        uid = factories.query(location)["interaction"]
        location = client.get(browser.login(interaction=uid).headers["Location"]).headers[
            "Location"]
    assert urlsplit(location).path.startswith("/consent/"), location
    return urlsplit(location).path


def ticked(client, path: str) -> dict[str, bool]:
    inputs = Inputs(client.get(path).text).inputs
    return {i["value"]: "checked" in i for i in inputs
            if i.get("type") == "checkbox" and i.get("name") == "scope"}


# ---- declined items and continued access -----------------------------------------

def test_declined_item_comes_back_unticked(client, rp):
    """Test that an item the resident unticked is unticked when the service asks again."""
    browser = Browser(client)
    path = consent_path(client, browser, rp, "openid name email")
    assert browser.consent(path, scopes=["name"]).status_code == 302
    again = consent_path(client, browser, rp, "openid name email", prompt="consent")
    assert ticked(client, again) == {"name": True, "email": False}


def test_declined_item_stays_unticked_after_withdrawal(client, rp):
    """Test that withdrawing consent does not turn a declined item back on."""
    browser = Browser(client)
    browser.consent(consent_path(client, browser, rp, "openid name email"), scopes=["email"])
    resident = db.session.scalar(select(Resident))
    consent_service.withdraw(resident.id, rp.client_id)
    db.session.commit()
    again = consent_path(client, browser, rp, "openid name email")
    assert ticked(client, again) == {"name": False, "email": True}


def test_continued_access_is_not_ticked_by_default(client, rp):
    """Test that 継続的な利用 (offline_access) starts unticked on a first request."""
    browser = Browser(client)
    path = consent_path(client, browser, rp, "openid name offline_access")
    assert ticked(client, path) == {"name": True, "offline_access": False}


def test_continued_access_stays_ticked_once_granted(client, rp):
    """Test that continued access the resident granted is ticked when asked again."""
    browser = Browser(client)
    path = consent_path(client, browser, rp, "openid offline_access")
    browser.consent(path, scopes=["offline_access"])
    again = consent_path(client, browser, rp, "openid offline_access", prompt="consent")
    assert ticked(client, again) == {"offline_access": True}


def test_withdrawn_continued_access_is_not_ticked(client, rp):
    """Test that after a withdrawal continued access starts unticked again."""
    browser = Browser(client)
    browser.consent(consent_path(client, browser, rp, "openid offline_access"),
                    scopes=["offline_access"])
    resident = db.session.scalar(select(Resident))
    consent_service.withdraw(resident.id, rp.client_id)
    db.session.commit()
    assert ticked(client, consent_path(client, browser, rp, "openid offline_access")) == {
        "offline_access": False}


# ---- what the page says ---------------------------------------------------------------

def test_email_item_shows_its_verified_status(client, rp):
    """Test that the email item shows the address and that it is verified (email_verified)."""
    page = client.get(consent_path(client, Browser(client), rp)).text
    assert "hanako@example.jp（確認済み）" in page


def test_unverified_email_says_so(client, app):
    """Test that an unverified address is shown as 未確認."""
    resident = factories.resident()
    db.session.get(Resident, resident.id).email_verified = False
    db.session.commit()
    rp = factories.rp()
    page = client.get(consent_path(client, Browser(client), rp)).text
    assert "hanako@example.jp（未確認）" in page
    assert "（確認済み）" not in page


def test_notes_follow_the_draft_terms(client, rp):
    """Test the notes: the lead-in, four notes folded with a summary each, the company named
    instead of 「当社」, and the consortium ID named as such."""
    page = client.get(consent_path(client, Browser(client), rp)).text
    assert "以外の者が運営、管理、または権限を保有するサービスでコンソーシアムIDを利用する際は" in page
    assert page.count('<details class="note">') == 4
    assert page.count("<summary>") == 4
    assert "当社" not in page
    assert "ユーザーID" not in page
    assert 'class="actions consent-actions"' in page


# ---- coming back to a finished sign-in -------------------------------------------------

def test_back_after_consent_says_signed_in(client, rp):
    """Test that the consent page of a sign-in just finished says so and links home."""
    browser = Browser(client)
    path = consent_path(client, browser, rp)
    assert browser.consent(path).status_code == 302
    page = client.get(path)
    assert page.status_code == 200
    assert "ログインは完了しています" in page.text
    assert "有効期限" not in page.text
    assert f'href="{HOME}"' in page.text
    assert "XXXサービスに戻る" in page.text


def test_back_after_decline_says_nothing_was_sent(client, rp):
    """Test that going back after declining says the sign-in was declined."""
    browser = Browser(client)
    path = consent_path(client, browser, rp)
    browser.consent(path, decision="deny")
    page = client.get(path)
    assert "何も提供していません" in page.text
    assert f'href="{HOME}"' in page.text


def test_back_to_login_of_a_finished_sign_in(client, rp):
    """Test that the login page of a finished interaction says it is finished too."""
    browser = Browser(client)
    path = consent_path(client, browser, rp)
    browser.consent(path)
    uid = path.rsplit("/", 1)[1]
    page = client.get("/login", query_string={"interaction": uid})
    assert "ログインは完了しています" in page.text
    resumed = client.get(f"/authorize/continue/{uid}")
    assert "ログインは完了しています" in resumed.text


def test_finished_without_client_uri_has_no_service_link(client, app):
    """Test that a client without client_uri gets the page without a link to it."""
    factories.resident()
    rp = factories.rp()
    browser = Browser(client)
    path = consent_path(client, browser, rp)
    browser.consent(path)
    page = client.get(path).text
    assert "ログインは完了しています" in page
    assert "に戻る" not in page
    assert 'href="/"' in page


def test_finished_uid_of_another_browser_is_expired(client, app, rp):
    """Test that another browser presenting the finished uid learns nothing about it."""
    browser = Browser(client)
    path = consent_path(client, browser, rp)
    browser.consent(path)
    other = app.test_client()
    page = other.get(path)
    assert page.status_code == 400
    assert "ログインは完了しています" not in page.text
    assert HOME not in page.text


def test_unknown_uid_is_expired(client, rp):
    """Test that an unknown uid still gets the expired page."""
    page = client.get("/consent/not-a-real-uid")
    assert page.status_code == 400
    assert "ログインは完了しています" not in page.text


def test_finished_form_posted_again_does_nothing(client, rp):
    """Test that posting a finished consent form again answers 400 and issues no code."""
    browser = Browser(client)
    path = consent_path(client, browser, rp)
    page = client.get(path)
    form = {"csrf_token": factories.csrf(page.text), "decision": "allow"}
    assert client.post(path, data=form).status_code == 302
    again = client.post(path, data=form)
    assert again.status_code == 400
    assert "Location" not in again.headers
    assert "ログインは完了しています" in again.text


def test_sign_out_forgets_finished_sign_ins(client, rp):
    """Test that after signing out the finished uid is no longer recognised."""
    browser = Browser(client)
    path = consent_path(client, browser, rp)
    browser.consent(path)
    with client.session_transaction() as session:
        assert path.rsplit("/", 1)[1] in session["finished_interactions"]
    page = client.get("/logout")  # no id_token_hint: the resident is asked first
    assert page.status_code == 200
    client.post("/logout", data={"csrf_token": factories.csrf(page.text)})
    assert "ログインは完了しています" not in client.get(path).text
