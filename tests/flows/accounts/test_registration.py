"""Registration: email first, then password, profile and the terms; the consortium ID is issued."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.accounts.models import Resident
from idp.db import utcnow
from idp.extensions import db
from idp.terms import service as terms
from tests import factories
from tests.helpers.accounts import EMAIL
from tests.helpers.accounts import FULL_FORM
from tests.helpers.accounts import Inputs
from tests.helpers.accounts import complete
from tests.helpers.accounts import mails_to
from tests.helpers.accounts import outbox
from tests.helpers.accounts import post_form
from tests.helpers.accounts import registration_link
from tests.helpers.accounts import request_link
from tests.helpers.accounts import tags
from tests.helpers.app import count


def test_register_page_is_japanese_and_asks_for_the_email_first(client):
    """Test that /register is in Japanese by default with one labelled email field."""
    page = client.get("/register")
    assert page.status_code == 200
    assert "コンソーシアムID" in page.text
    inputs = Inputs(page.text)
    assert inputs.unlabelled() == []
    assert [f["name"] for f in inputs.fields if f.get("type") != "hidden"] == ["email"]


def test_new_address_gets_a_link_and_nothing_is_stored_yet(client):
    """Test that a new address receives a registration link and no resident exists before it is used."""
    response = request_link(client)
    assert response.status_code == 200
    assert EMAIL in response.text
    assert count(Resident) == 0
    assert registration_link().startswith("/register/complete?token=")
    assert all(EMAIL not in str(e.data) for e in tags())


def test_completing_the_registration_issues_a_verified_consortium_id(client):
    """Test that the link, a password, the profile and the three agreements issue a verified ID."""
    request_link(client)
    response = complete(client, registration_link())
    assert response.status_code == 302
    resident = db.session.scalar(select(Resident))
    assert resident.email == EMAIL and resident.email_verified is True
    assert (resident.family_name, resident.given_name_kana, resident.birth_year,
            resident.gender, resident.postal_code) == ("札幌", "タロウ", 1985, "male", "060-0001")
    assert resident.terms_version == terms.current_version()
    assert resident.terms_accepted_at is not None
    created = tags("resident:account:create")[0]
    assert created.resident_id == resident.id and created.data == {"channel": "self_registration"}
    assert tags("resident:terms:accept")[0].data["version"] == terms.current_version()
    done = client.get(response.headers["Location"])
    assert done.status_code == 200
    assert resident.display_id in done.text
    welcome = [m for m in mails_to(EMAIL) if resident.display_id in m.body]
    assert len(welcome) == 1


def test_new_resident_is_signed_in_after_registration(client):
    """Test that the browser that completed the registration is signed in as the new resident."""
    request_link(client)
    complete(client, registration_link())
    page = client.get("/account")
    assert page.status_code == 200
    assert EMAIL in page.text


def test_registered_address_gets_the_same_page_and_a_notice_instead(client):
    """Test that an address with an ID gets the same answer, and a notice (no link) is mailed to it."""
    factories.resident(EMAIL)
    known = request_link(client)
    fresh = request_link(client, "jiro@example.jp")
    assert known.status_code == fresh.status_code == 200
    assert known.text.replace(EMAIL, "X") == fresh.text.replace("jiro@example.jp", "X")
    (notice,) = mails_to(EMAIL)
    assert "/register/complete" not in notice.body
    assert "/password/reset" in notice.body
    assert count(Resident) == 1


def test_both_answers_send_exactly_one_mail(client):
    """Test that a registered and a new address each cause one mail, so timing does not differ by mail."""
    factories.resident(EMAIL)
    request_link(client)
    request_link(client, "jiro@example.jp")
    assert [m.to for m in outbox()] == [EMAIL, "jiro@example.jp"]


@pytest.mark.parametrize("email", ["", "not-an-address", "a@b", "x" * 250 + "@example.jp"])
def test_invalid_address_is_refused_without_mail(client, email):
    """Test that an invalid or oversized address is answered 400 with a message, and nothing is sent."""
    response = request_link(client, email)
    assert response.status_code == 400
    assert 'role="alert"' in response.text
    assert outbox() == []


def test_registration_form_marks_every_profile_item_optional(client):
    """Test that the profile fields carry the 任意 badge, the agreements 必須, and every field is labelled."""
    request_link(client)
    page = client.get(registration_link())
    # 4 name fields, year, gender, postal, city, and leaving the city's statistics
    assert page.text.count('badge-optional">任意') == 9
    assert page.text.count('badge-required">必須') == 5  # the password twice, the three agreements
    assert Inputs(page.text).unlabelled() == []


def test_form_shows_both_clauses_of_the_consortium(client):
    """Test that the form shows the two clauses of the ID: provision with consent, and collection."""
    request_link(client)
    page = client.get(registration_link())
    assert "会員企業に提供" in page.text
    assert "収集" in page.text
    assert f"{terms.current_version()}版" in page.text


@pytest.mark.parametrize(("field", "typed", "stored"), [
    ("postal_code", "０６０ー０００１", "060-0001"),
    ("postal_code", "〒0600001", "060-0001"),
    ("family_name_kana", "さっぽろ", "サッポロ"),
    ("given_name_kana", "ﾀﾛｳ", "タロウ"),
    ("birth_year", "１９８５", 1985),
    ("gender", "", None),
    ("locality", "  ", None),
])
def test_typed_forms_are_normalised(client, field, typed, stored):
    """Test that full-width digits, 〒, hiragana and half-width kana are normalised before storing."""
    request_link(client)
    assert complete(client, registration_link(), **{field: typed}).status_code == 302
    assert getattr(db.session.scalar(select(Resident)), field) == stored


@pytest.mark.parametrize(("field", "value", "message"), [
    ("postal_code", "06-00001", "060-0042"),
    ("postal_code", "060-00012", "060-0042"),
    ("birth_year", "1850", "1896"),
    ("birth_year", "2999", "2026"),
    ("birth_year", "85", "1990"),
    ("family_name", "長" * 101, "100"),
    ("locality", "x" * 101, "100"),
    ("family_name_kana", "Sapporo", "カタカナ"),
    ("gender", "robot", "選択"),
    ("password", "short", "8"),
    ("password_confirm", "different password", "一致"),
    ("password", EMAIL, "メールアドレス"),
    ("agree_provision", None, "同意"),
    ("agree_collection", None, "同意"),
    ("agree_terms", None, "同意"),
])
@freeze_time("2026-11-22 12:00:00")
def test_bad_input_is_explained_and_nothing_is_created(client, field, value, message):
    """Test that invalid fields answer 400 with a message for that field, and no ID is issued."""
    request_link(client)
    overrides = {field: value}
    if field == "password":
        overrides["password_confirm"] = value
    response = complete(client, registration_link(), **overrides)
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.text
    assert message in response.text
    assert count(Resident) == 0


def test_link_works_once(client):
    """Test that a used registration link answers 'already used' and issues nothing more."""
    request_link(client)
    link = registration_link()
    complete(client, link)
    again = client.get(link)
    assert again.status_code == 400
    assert "すでに使用" in again.text
    assert complete_post_fails(client, link)
    assert count(Resident) == 1


def test_link_expires(app, client):
    """Test that a registration link older than email_link_ttl answers 'expired'."""
    ttl = app.extensions["idp.settings"].email_link_ttl
    start = utcnow()
    with freeze_time(start):
        request_link(client)
    link = registration_link()
    with freeze_time(start + dt.timedelta(seconds=ttl - 60)):
        assert client.get(link).status_code == 200
    with freeze_time(start + dt.timedelta(seconds=ttl + 1)):
        response = client.get(link)
        assert response.status_code == 400
        assert "有効期限" in response.text
        assert complete_post_fails(client, link)
    assert count(Resident) == 0


def complete_post_fails(client, link) -> bool:
    token = parse_qs(urlsplit(link).query)["token"][0]
    page = client.get("/password/reset")  # any public form, for a CSRF token
    response = client.post("/register/complete", data={**FULL_FORM, "token": token,
                                                       "csrf_token": factories.csrf(page.text)})
    return response.status_code == 400


@pytest.mark.parametrize("mangle", [lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),
                                    lambda t: "", lambda t: "x" * 3000])
def test_tampered_link_is_invalid(client, mangle):
    """Test that a changed, empty or oversized token answers 'not valid'."""
    request_link(client)
    token = parse_qs(urlsplit(registration_link()).query)["token"][0]
    response = client.get("/register/complete", query_string={"token": mangle(token)})
    assert response.status_code == 400
    assert "無効" in response.text


def test_link_for_another_purpose_is_refused(app, client):
    """Test that a password reset token cannot be used as a registration link (purpose salt)."""
    from idp.accounts import links

    with app.test_request_context():
        token = links.make(links.RESET_PASSWORD, e=EMAIL)
    assert client.get("/register/complete", query_string={"token": token}).status_code == 400


def test_terms_published_while_filling_in_are_not_accepted_blindly(client):
    """Test that a form showing older terms is refused when newer terms took effect meanwhile."""
    request_link(client)
    link = registration_link()
    page = client.get(link)
    terms.publish_terms("2027-01", "https://consortium.example.jp/terms/2027-01",
                        summary="改定", summary_en="Revised")
    db.session.commit()
    token = parse_qs(urlsplit(link).query)["token"][0]
    response = client.post("/register/complete", data={
        **FULL_FORM, "token": token, "terms_version": terms_version_on(page.text),
        "csrf_token": factories.csrf(page.text)})
    assert response.status_code == 400
    assert "2027-01" in response.text
    assert count(Resident) == 0


def terms_version_on(html: str) -> str:
    return re.search(r'name="terms_version" value="([^"]+)"', html).group(1)


def test_post_without_csrf_is_refused(client):
    """Test that registration posts without a CSRF token change nothing and send nothing."""
    assert client.post("/register", data={"email": EMAIL}).status_code == 400
    assert outbox() == []
    request_link(client)
    token = parse_qs(urlsplit(registration_link()).query)["token"][0]
    response = client.post("/register/complete", data={**FULL_FORM, "token": token})
    assert response.status_code == 400
    assert count(Resident) == 0


@pytest.mark.parametrize("settings_overrides", [{"account_mail_limit": "2 per hour"}])
def test_requests_are_rate_limited(client, settings_overrides):
    """Test that the form stops sending mail after account_mail_limit requests (429)."""
    assert request_link(client, "a1@example.jp").status_code == 200
    assert request_link(client, "a2@example.jp").status_code == 200
    assert request_link(client, "a3@example.jp").status_code == 429
    assert len(outbox()) == 2


def test_registration_during_an_authorization_continues_to_the_service(client):
    """Test that an ID registered from a service's sign-in page can continue to that service."""
    rp = factories.rp()
    _, challenge = factories.pkce_pair()
    browser = factories.Browser(client)
    response = browser.authorize(rp, code_challenge=challenge, code_challenge_method="S256")
    uid = factories.query(response.headers["Location"])["interaction"]
    login = client.get("/login", query_string={"interaction": uid})
    assert f"/register?interaction={uid}" in login.text
    post_form(client, f"/register?interaction={uid}", {"email": EMAIL, "interaction": uid})
    done = client.get(complete(client, registration_link()).headers["Location"])
    assert f"/authorize/continue/{uid}" in done.text
    assert "XXXサービス" in done.text
    resumed = client.get(f"/authorize/continue/{uid}")
    assert urlsplit(resumed.headers["Location"]).path.startswith("/consent/")


def test_signed_in_resident_is_sent_to_the_account(client):
    """Test that /register for a signed-in resident goes to /account."""
    factories.resident()
    factories.Browser(client).login()
    assert client.get("/register").headers["Location"].endswith("/account")


def test_pages_are_english_on_request(client):
    """Test that the registration page follows the language switch."""
    client.get("/lang/en")
    page = client.get("/register")
    assert "Get a consortium ID" in page.text
    assert page.text.count("<html lang=\"en\"") == 1
