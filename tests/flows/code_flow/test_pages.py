"""The resident's pages: login and consent, their languages, forms and protections."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from freezegun import freeze_time

from idp.access.models import BrowserSession
from idp.consent.models import Consent
from idp.db import utcnow
from tests import factories
from tests.helpers.accounts import Inputs
from tests.helpers.app import count

ALL_ITEMS = "openid name birth_year gender email postal_code offline_access"
JA_LABELS = {
    "openid": "コンソーシアムID",
    "name": "姓名（フリガナ）",
    "birth_year": "生年",
    "gender": "性別",
    "email": "メールアドレス",
    "postal_code": "住所情報（郵便番号と市区町村）",
    "offline_access": "継続的な利用",
}


@pytest.fixture
def rp():
    factories.resident()
    return factories.rp()


@pytest.fixture
def browser(client):
    return factories.Browser(client)


def to_consent(client, browser, rp, scope="openid name email", **params) -> str:
    """Start an authorization request, sign in, and return the consent page's path."""
    response = browser.authorize(rp, scope=scope, **params)
    uid = factories.query(response.headers["Location"])["interaction"]
    response = browser.login(interaction=uid)
    assert response.status_code == 302, response.text
    response = client.get(response.headers["Location"])
    assert "/consent/" in response.headers["Location"]
    return urlsplit(response.headers["Location"]).path


def login_page(client, browser, rp, **params):
    response = browser.authorize(rp, **params)
    assert "/login" in response.headers["Location"]
    return client.get(response.headers["Location"])


def redeem_scope(client, rp, code: str, verifier: str) -> str:
    response = client.post("/token", data={
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": rp.redirect_uri, "code_verifier": verifier,
    }, auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 200, response.text
    return response.json["scope"]


def alert(html: str) -> str:
    match = re.search(r'<div class="alert"[^>]*>(.*?)</div>', html, re.S)
    assert match, "no alert on the page"
    return match.group(1).strip()


# ---- consent page in Japanese ---------------------------------------------------

def test_consent_page_is_japanese_by_default(client, browser, rp):
    """Test that with no language preference the consent page is in Japanese."""
    page = client.get(to_consent(client, browser, rp))
    assert page.status_code == 200
    assert '<html lang="ja">' in page.text
    assert "同意してはじめる" in page.text
    assert "同意しない" in page.text
    assert "Agree and start" not in page.text


def test_consent_page_names_company_service_and_purpose(client, browser, rp):
    """Test that the consent page shows the company, the service and the purpose of use."""
    page = client.get(to_consent(client, browser, rp)).text
    assert "XXXサービス（提供者：A社）" in page
    assert "利用目的" in page
    assert "テスト用サービスの提供" in page


def test_consent_page_lists_each_requested_item_in_japanese(client, browser, rp):
    """Test that every requested item appears with its Japanese label."""
    page = client.get(to_consent(client, browser, rp, scope=ALL_ITEMS)).text
    for scope, label in JA_LABELS.items():
        assert label in page, scope


def test_consent_page_omits_items_not_requested(client, browser, rp):
    """Test that items the client did not ask for are not on the consent page."""
    page = client.get(to_consent(client, browser, rp, scope="openid email")).text
    assert "メールアドレス" in page
    assert "姓名（フリガナ）" not in page
    assert "生年" not in page


def test_consent_page_shows_the_values_to_be_sent(client, browser, rp):
    """Test that the consent page shows what will be sent for each item."""
    page = client.get(to_consent(client, browser, rp, scope="openid name email postal_code"))
    assert "札幌 花子（サッポロ ハナコ）" in page.text
    assert "hanako@example.jp" in page.text
    assert "〒060-0042 札幌市中央区" in page.text


def test_consent_page_shows_gender_in_japanese(client, browser, rp):
    """Test that the Japanese consent page shows the gender to be sent in Japanese."""
    page = client.get(to_consent(client, browser, rp, scope="openid gender")).text
    assert "女性" in page


def test_consent_page_explains_withdrawal(client, browser, rp):
    """Test that the notes tell the resident where to withdraw consent."""
    page = client.get(to_consent(client, browser, rp)).text
    assert "各サービスでのデータ利用" in page
    assert "同意を取り消して" in page


# ---- language ---------------------------------------------------------------------

def test_ui_locales_en_makes_the_login_page_english(client, browser, rp):
    """Test that ui_locales=en on the authorization request gives an English login page."""
    page = login_page(client, browser, rp, ui_locales="en")
    assert '<html lang="en">' in page.text
    assert "Sign in" in page.text
    assert "ログイン" not in page.text


def test_ui_locales_en_makes_the_consent_page_english(client, browser, rp):
    """Test that ui_locales=en on the authorization request gives an English consent page."""
    page = client.get(to_consent(client, browser, rp, ui_locales="en")).text
    assert "Agree and start" in page
    assert "Decline" in page
    assert "同意してはじめる" not in page


def test_ui_locales_picks_the_first_supported_tag(client, browser, rp):
    """Test that ui_locales "fr-CA en-US" falls through to English."""
    page = login_page(client, browser, rp, ui_locales="fr-CA en-US")
    assert '<html lang="en">' in page.text


def test_accept_language_en_makes_the_pages_english(client, browser, rp):
    """Test that Accept-Language: en gives English login and consent pages."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert '<html lang="en">' in login_page(client, browser, rp).text
    page = client.get(to_consent(client, browser, rp)).text
    assert "Agree and start" in page
    assert "Decline" in page


def test_accept_language_japanese_first_keeps_japanese(client, browser, rp):
    """Test that Accept-Language preferring ja over en gives Japanese pages."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ja,en;q=0.8"
    page = client.get(to_consent(client, browser, rp)).text
    assert "同意してはじめる" in page


def test_language_switch_during_sign_in_carries_to_consent(client, browser, rp):
    """Test that choosing English on the login page makes the consent page English too."""
    response = browser.authorize(rp)
    uid = factories.query(response.headers["Location"])["interaction"]
    back = client.get("/lang/en", query_string={"next": f"/login?interaction={uid}"})
    assert back.headers["Location"] == f"/login?interaction={uid}"
    assert '<html lang="en">' in client.get(back.headers["Location"]).text
    response = client.get(browser.login(interaction=uid).headers["Location"])
    assert "Agree and start" in client.get(response.headers["Location"]).text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/",
                                    "/\\evil.example", "/\t/evil.example"])
def test_language_switch_never_leaves_the_site(client, target):
    """Test that the language switch's next parameter cannot send the browser off-site."""
    location = client.get("/lang/en", query_string={"next": target}).headers["Location"]
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc
    assert location.startswith("/")
    assert not location.startswith("//")
    assert "\\" not in location


# ---- the consent form ---------------------------------------------------------

def test_openid_is_a_required_item(client, browser, rp):
    """Test that openid is sent by a hidden input and shown as a disabled, checked box."""
    inputs = Inputs(client.get(to_consent(client, browser, rp)).text).inputs
    hidden = [i for i in inputs if i.get("type") == "hidden" and i.get("name") == "scope"]
    assert hidden == [{"type": "hidden", "name": "scope", "value": "openid"}]
    box = next(i for i in inputs if i.get("type") == "checkbox" and i.get("value") == "openid")
    assert "disabled" in box
    assert "checked" in box
    assert "name" not in box


def test_optional_items_are_named_checkboxes(client, browser, rp):
    """Test that each optional item is an <input type="checkbox" name="scope" value=…>,
    ticked on a first request except continued access, which is never the default."""
    inputs = Inputs(client.get(to_consent(client, browser, rp, scope=ALL_ITEMS)).text).inputs
    boxes = {i["value"]: i for i in inputs
             if i.get("type") == "checkbox" and i.get("name") == "scope"}
    assert set(boxes) == set(ALL_ITEMS.split()) - {"openid"}
    for scope, box in boxes.items():
        assert "disabled" not in box
        assert ("checked" in box) == (scope != "offline_access"), scope


def test_unticked_item_is_left_out_of_the_token(client, browser, rp):
    """Test that unticking an optional item gives a code whose token scope lacks it."""
    verifier, challenge = factories.pkce_pair()
    result = browser.code_flow(rp, scope="openid name email", consent_scopes=["openid", "name"],
                               code_challenge=challenge, code_challenge_method="S256")
    assert redeem_scope(client, rp, result["code"], verifier).split() == ["openid", "name"]


def test_openid_cannot_be_unticked(client, browser, rp):
    """Test that a consent posted without openid still grants openid."""
    verifier, challenge = factories.pkce_pair()
    result = browser.code_flow(rp, scope="openid email", consent_scopes=["email"],
                               code_challenge=challenge, code_challenge_method="S256")
    assert set(redeem_scope(client, rp, result["code"], verifier).split()) == {"openid",
                                                                                "email"}


def test_declined_item_is_unticked_next_time(client, browser, rp):
    """Test that an item declined before is shown unticked when consent is asked again."""
    browser.code_flow(rp, scope="openid name email", consent_scopes=["openid", "name"])
    response = browser.authorize(rp, scope="openid name email", prompt="consent")
    inputs = Inputs(client.get(response.headers["Location"]).text).inputs
    boxes = {i["value"]: i for i in inputs if i.get("name") == "scope"}
    assert "checked" in boxes["name"]
    assert "checked" not in boxes["email"]


def test_deny_redirects_with_access_denied(client, browser, rp):
    """Test that decision=deny redirects to the client with access_denied, state and iss."""
    path = to_consent(client, browser, rp)
    response = browser.consent(path, decision="deny")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(rp.redirect_uri + "?")
    params = factories.query(response.headers["Location"])
    assert params["error"] == "access_denied"
    assert params["state"] == "st-123"
    assert params["iss"] == "http://localhost"
    assert "code" not in params
    assert count(Consent) == 0


def test_consent_form_cannot_be_submitted_twice(client, browser, rp):
    """Test that a second submission of the same consent form gets a 400 page and no code."""
    path = to_consent(client, browser, rp)
    page = client.get(path)
    form = {"csrf_token": factories.csrf(page.text), "decision": "allow", "scope": "name"}
    assert client.post(path, data=form).status_code == 302
    again = client.post(path, data=form)
    assert again.status_code == 400
    assert "Location" not in again.headers


def test_unknown_decision_redisplays_the_page(client, browser, rp):
    """Test that a decision other than allow or deny re-renders the consent page with 400."""
    path = to_consent(client, browser, rp)
    response = browser.consent(path, decision="maybe")
    assert response.status_code == 400
    assert "同意してはじめる" in response.text
    assert count(Consent) == 0


# ---- CSRF -------------------------------------------------------------------------

def test_login_post_without_csrf_token_is_refused(client, rp):
    """Test that POST /login without csrf_token answers 400 and signs nobody in."""
    client.get("/login")
    response = client.post("/login", data={"email": "hanako@example.jp",
                                           "password": factories.PASSWORD})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "フォームの有効期限が切れました" in response.text
    assert count(BrowserSession) == 0
    assert "ログアウト" not in client.get("/").text


def test_login_post_with_forged_csrf_token_is_refused(client, rp):
    """Test that POST /login with a made-up csrf_token answers 400 and signs nobody in."""
    client.get("/login")
    response = client.post("/login", data={"email": "hanako@example.jp",
                                           "password": factories.PASSWORD,
                                           "csrf_token": "forged"})
    assert response.status_code == 400
    assert count(BrowserSession) == 0


def test_consent_post_without_csrf_token_is_refused(client, browser, rp):
    """Test that POST /consent/<uid> without csrf_token answers 400 and records no consent."""
    path = to_consent(client, browser, rp)
    response = client.post(path, data={"decision": "allow", "scope": ["openid", "name"]})
    assert response.status_code == 400
    assert count(Consent) == 0
    assert client.get(path).status_code == 200


# ---- headers and cookies ---------------------------------------------------------

def test_every_html_page_forbids_framing(client, browser, rp):
    """Test that HTML pages carry a CSP with frame-ancestors 'none' and X-Frame-Options DENY."""
    pages = {
        "home": client.get("/"),
        "login": client.get("/login"),
        "not found": client.get("/no-such-page"),
        "unknown interaction": client.get("/consent/unknown"),
        "logout": client.get("/logout"),
        "consent": client.get(to_consent(client, browser, rp)),
    }
    for name, response in pages.items():
        assert response.mimetype == "text/html", name
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], name
        assert response.headers["X-Frame-Options"] == "DENY", name


def test_html_pages_are_not_cached(client, browser, rp):
    """Test that the consent page is sent with Cache-Control: no-store."""
    response = client.get(to_consent(client, browser, rp))
    assert response.headers["Cache-Control"] == "no-store"


def test_session_cookie_is_httponly_and_samesite_lax(client, browser, rp):
    """Test that the session cookie set at sign-in is HttpOnly and SameSite=Lax."""
    response = browser.login()
    cookies = [c for c in response.headers.getlist("Set-Cookie")
               if c.startswith("machi_id_session=")]
    assert cookies
    for cookie in cookies:
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie


# ---- login ------------------------------------------------------------------------

def test_login_failure_does_not_tell_which_part_was_wrong(client, browser, rp):
    """Test that a wrong password and an unknown email give the same status and message."""
    wrong_password = browser.login("hanako@example.jp", "wrong password")
    unknown_email = browser.login("nobody@example.jp", factories.PASSWORD)
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert alert(wrong_password.text) == alert(unknown_email.text)
    assert alert(wrong_password.text) == "メールアドレスまたはパスワードが正しくありません。"
    assert count(BrowserSession) == 0


def test_login_failure_pages_differ_only_in_echoed_input(client, browser, rp):
    """Test that the two failure pages are identical apart from the email and CSRF token."""

    def normalised(response, email):
        html = re.sub(r'name="csrf_token" value="[^"]+"', "", response.text)
        return html.replace(email, "EMAIL")

    wrong_password = browser.login("hanako@example.jp", "wrong password")
    unknown_email = browser.login("nobody@example.jp", factories.PASSWORD)
    assert normalised(wrong_password, "hanako@example.jp") == normalised(unknown_email,
                                                                         "nobody@example.jp")


# ---- error pages ------------------------------------------------------------------

def test_unknown_html_path_renders_a_page(client):
    """Test that a 404 on an HTML path renders the HTML error page."""
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "ページが見つかりません" in response.text


@pytest.mark.parametrize("path", ["/api/x", "/token/x", "/.well-known/nothing"])
def test_unknown_api_path_answers_json(client, path):
    """Test that a 404 under an API path answers JSON with an error code."""
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.json["error"] == "not_found"


def test_wrong_method_on_token_endpoint_answers_json(client):
    """Test that GET /token answers 405 in JSON, not an HTML page."""
    response = client.get("/token")
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert response.json["error"] == "method_not_allowed"


def test_consent_page_for_unknown_interaction_is_an_error_page(client, browser, rp):
    """Test that /consent/<unknown id> shows a 400 error page, not a 500."""
    browser.login()
    response = client.get("/consent/NoSuchInteraction")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "ログインの有効期限が切れました" in response.text


def test_consent_post_for_unknown_interaction_is_an_error_page(client, browser, rp):
    """Test that posting a decision for an unknown interaction shows a 400 error page."""
    page = client.get("/login")
    response = client.post("/consent/NoSuchInteraction",
                           data={"csrf_token": factories.csrf(page.text), "decision": "allow"})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert count(Consent) == 0


def test_consent_page_for_expired_interaction_is_an_error_page(client, browser, rp):
    """Test that a consent page left open past the interaction's lifetime shows a 400 page."""
    with freeze_time(utcnow()) as frozen:
        path = to_consent(client, browser, rp)
        frozen.tick(dt.timedelta(minutes=30, seconds=1))
        response = client.get(path)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "ログインの有効期限が切れました" in response.text
