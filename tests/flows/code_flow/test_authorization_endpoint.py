"""The authorization endpoint (RFC 6749 §4.1.1-2, OIDC Core §3.1.2, RFC 9207, RFC 7636)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from idp.access.models import AuthorizationCode
from idp.clients import service as clients
from idp.extensions import db
from tests import factories
from tests.factories import Browser
from tests.factories import query


@pytest.fixture
def rp(app):
    factories.resident()
    return factories.rp()


@pytest.fixture
def browser(client):
    return Browser(client)


def pkce():
    verifier, challenge = factories.pkce_pair()
    return {"code_challenge": challenge, "code_challenge_method": "S256"}


def signed_in(browser, rp):
    """Sign in once and consent once, so later requests go straight through."""
    browser.code_flow(rp, **pkce())


def test_unknown_client_shows_a_page_not_a_redirect(browser, rp):
    """Test that an unknown client_id gets an HTML error page and no redirect."""
    response = browser.authorize(factories.RP("mc_nope", None, rp.company_id), **pkce())
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"


def test_unregistered_redirect_uri_shows_a_page(browser, rp):
    """Test that a redirect URI not registered exactly is never redirected to."""
    for uri in ("https://rp.example.jp/callback/", "https://rp.example.jp/callback?x=1",
                "https://evil.example/callback", "https://RP.example.jp/callback"):
        bad = factories.RP(rp.client_id, None, rp.company_id, redirect_uri=uri)
        response = browser.authorize(bad, **pkce())
        assert response.status_code == 400, uri
        assert "Location" not in response.headers


def test_missing_redirect_uri_uses_the_single_registered_one(browser, rp):
    """Test that redirect_uri may be omitted when exactly one is registered."""
    signed_in(browser, rp)
    response = browser.authorize(rp, redirect_uri=None, **pkce())
    assert response.headers["Location"].startswith(rp.redirect_uri + "?code=")


def test_unsupported_response_type_redirects_with_error_and_iss(browser, rp):
    """Test that response_type=token is refused at the client with iss and state."""
    response = browser.authorize(rp, response_type="token", **pkce())
    assert response.status_code == 302
    params = query(response.headers["Location"])
    assert params["error"] == "unsupported_response_type"
    assert params["state"] == "st-123"
    assert params["iss"] == "http://localhost"


def test_unknown_scope_is_invalid_scope(browser, rp):
    """Test that an unknown scope is answered with invalid_scope at the redirect URI."""
    params = query(browser.authorize(rp, scope="openid wallet", **pkce()).headers["Location"])
    assert params["error"] == "invalid_scope"


def test_scope_not_registered_for_client_is_invalid_scope(app, browser):
    """Test that a client cannot request a scope it is not registered for."""
    factories.resident()
    narrow = factories.rp(scopes=["openid", "email"])
    params = query(browser.authorize(narrow, scope="openid gender", **pkce()).headers["Location"])
    assert params["error"] == "invalid_scope"


def test_public_client_must_use_pkce(app, browser):
    """Test that a public client without code_challenge gets invalid_request."""
    factories.resident()
    public = factories.rp(public=True)
    params = query(browser.authorize(public).headers["Location"])
    assert params["error"] == "invalid_request"
    assert "code_challenge" in params["error_description"]


def test_plain_pkce_is_refused(browser, rp):
    """Test that code_challenge_method=plain (or missing) is refused: S256 only."""
    _, challenge = factories.pkce_pair()
    for method in ("plain", None):
        response = browser.authorize(rp, code_challenge=challenge, code_challenge_method=method)
        assert query(response.headers["Location"])["error"] == "invalid_request"


def test_no_session_goes_to_login_page(browser, rp):
    """Test that an anonymous request is sent to the login page with an interaction id."""
    response = browser.authorize(rp, **pkce())
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert query(response.headers["Location"])["interaction"]


def test_prompt_none_without_session_is_login_required(browser, rp):
    """Test that prompt=none answers login_required when nobody is signed in."""
    params = query(browser.authorize(rp, prompt="none", **pkce()).headers["Location"])
    assert params["error"] == "login_required"
    assert params["state"] == "st-123"
    assert params["iss"] == "http://localhost"


def test_prompt_none_without_consent_is_consent_required(browser, rp):
    """Test that prompt=none answers consent_required when consent is missing."""
    signed_in(browser, rp)
    params = query(browser.authorize(rp, scope="openid gender", prompt="none",
                                     **pkce()).headers["Location"])
    assert params["error"] == "consent_required"


def test_prompt_none_with_session_and_consent_issues_a_code(browser, rp):
    """Test that prompt=none succeeds silently when signed in with consent in force."""
    signed_in(browser, rp)
    params = query(browser.authorize(rp, prompt="none", **pkce()).headers["Location"])
    assert "code" in params and params["state"] == "st-123"


def test_prompt_none_combined_with_another_value_is_invalid(browser, rp):
    """Test that prompt=none login is an invalid request (OIDC Core §3.1.2.1)."""
    signed_in(browser, rp)
    params = query(browser.authorize(rp, prompt="none login", **pkce()).headers["Location"])
    assert params["error"] == "invalid_request"


def test_prompt_login_forces_a_new_sign_in(browser, rp):
    """Test that prompt=login shows the login page even with a live session."""
    signed_in(browser, rp)
    response = browser.authorize(rp, prompt="login", **pkce())
    assert urlsplit(response.headers["Location"]).path == "/login"
    uid = query(response.headers["Location"])["interaction"]
    resumed = browser.client.get(browser.login(interaction=uid).headers["Location"])
    assert "code" in query(resumed.headers["Location"])


def test_prompt_consent_asks_again(browser, rp):
    """Test that prompt=consent shows the consent page although consent is in force."""
    signed_in(browser, rp)
    response = browser.authorize(rp, prompt="consent", **pkce())
    assert urlsplit(response.headers["Location"]).path.startswith("/consent/")


def test_max_age_exceeded_requires_login(browser, rp):
    """Test that max_age older than the sign-in sends the resident to log in again."""
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        signed_in(browser, rp)
        frozen.tick(dt.timedelta(seconds=120))
        fresh = browser.authorize(rp, max_age="600", **pkce())
        assert "code" in query(fresh.headers["Location"])
        stale = browser.authorize(rp, max_age="60", **pkce())
        assert urlsplit(stale.headers["Location"]).path == "/login"
        none = browser.authorize(rp, max_age="60", prompt="none", **pkce())
        assert query(none.headers["Location"])["error"] == "login_required"


def test_invalid_max_age_is_invalid_request(browser, rp):
    """Test that a non-numeric max_age is refused at the redirect URI."""
    signed_in(browser, rp)
    params = query(browser.authorize(rp, max_age="soon", **pkce()).headers["Location"])
    assert params["error"] == "invalid_request"


def test_login_hint_prefills_the_email(browser, rp):
    """Test that login_hint is put into the login form's email field."""
    response = browser.authorize(rp, login_hint="hanako@example.jp", **pkce())
    page = browser.client.get(response.headers["Location"])
    assert 'value="hanako@example.jp"' in page.text


def test_ui_locales_en_renders_english_login(browser, rp):
    """Test that ui_locales=en makes the login page English."""
    response = browser.authorize(rp, ui_locales="en-US ja", **pkce())
    page = browser.client.get(response.headers["Location"])
    assert 'lang="en"' in page.text


def test_success_response_carries_code_state_and_iss(browser, rp):
    """Test that the success redirect has code, state and iss (RFC 9207)."""
    params = browser.code_flow(rp, **pkce())
    assert set(params) == {"code", "state", "iss"}
    assert params["iss"] == "http://localhost"


def test_code_is_stored_only_as_digest(app, browser, rp):
    """Test that the code string is not stored anywhere, only its SHA-256."""
    params = browser.code_flow(rp, **pkce())
    row = db.session.scalar(select(AuthorizationCode))
    assert params["code"] not in repr(vars(row))
    assert len(row.code_digest) == 64


def test_nonce_replay_is_refused(browser, rp):
    """Test that a nonce already bound to a code of this client is refused."""
    browser.code_flow(rp, nonce="same-nonce", **pkce())
    params = query(browser.authorize(rp, nonce="same-nonce", **pkce()).headers["Location"])
    assert params["error"] == "invalid_request"


def test_revoked_client_shows_no_longer_connected(app, browser, rp):
    """Test that a revoked client's authorize request shows a clear page."""
    clients.revoke_client(rp.client_id)
    db.session.commit()
    response = browser.authorize(rp, **pkce())
    assert response.status_code == 403
    assert "Location" not in response.headers


def test_suspended_company_shows_no_longer_connected(app, browser, rp):
    """Test that a suspended company's clients cannot start a sign-in."""
    clients.suspend_company(rp.company_id)
    db.session.commit()
    assert browser.authorize(rp, **pkce()).status_code == 403


def test_malformed_parameters_never_500(browser, rp):
    """Test that junk parameters get a spec error or page, never a 500."""
    cases = [
        {"client_id": "x" * 5000},
        {"redirect_uri": "javascript:alert(1)"},
        {"scope": "\x00openid"},
        {"response_type": ""},
        {"code_challenge": "short", "code_challenge_method": "S256"},
        {"prompt": "bogus"},
        {"max_age": "-1"},
        {"ui_locales": "zz" * 500},
        {"redirect_uri": 'https://rp.example.jp/"cb\\'},
        {"response_type": 'to"ken'},
        {"scope": "openid é\""},
    ]
    for extra in cases:
        response = browser.authorize(rp, **{**pkce(), **extra})
        assert response.status_code < 500, extra
    assert db.session.scalar(select(func.count()).select_from(AuthorizationCode)) == 0


def test_expired_interaction_shows_a_page(browser, rp):
    """Test that resuming an unknown interaction is a 400 page, not a 500."""
    assert browser.client.get("/authorize/continue/nope").status_code == 400
    assert browser.client.get("/login?interaction=nope").status_code == 400
