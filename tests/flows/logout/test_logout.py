"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and the resident's own sign-out."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from freezegun import freeze_time
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from idp.access.models import BrowserSession
from idp.audit.models import AuditEvent
from idp.extensions import db
from tests import factories
from tests.helpers.oauth import ResidentBrowser
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import tokens_for

BYE = "https://rp.example.jp/bye"
ISSUER = "http://localhost"


@pytest.fixture
def rp():
    return factories.rp(post_logout_redirect_uris=[BYE])


@pytest.fixture
def browser(client):
    return factories.Browser(client)


@pytest.fixture
def id_token(client, rp, browser):
    """A signed-in browser (the `client` cookie jar) and the ID token its RP received."""
    factories.resident()
    return tokens_for(client, rp, scope="openid email", browser=browser)["id_token"]


def signed_in(browser, rp) -> bool:
    """True when /authorize answers without asking the resident to sign in."""
    location = browser.authorize(rp, scope="openid email").headers.get("Location", "")
    return "/login" not in location


def open_sessions() -> list[BrowserSession]:
    return list(db.session.scalars(select(BrowserSession).where(BrowserSession.ended_at.is_(None))))


def logout_events() -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.tag == "resident:session:end").order_by(AuditEvent.id)))


def foreign_id_token(rp, kid: str = "someone-else") -> str:
    """An ID token for `rp` with the right claims, signed by a key that is not ours."""
    now = int(time.time())
    key = RSAKey.generate_key(2048)
    claims = {"iss": ISSUER, "aud": rp.client_id, "sub": "someone", "iat": now,
              "exp": now + 3600}
    return jwt.encode({"alg": "RS256", "kid": kid}, claims, key)


def test_rp_initiated_logout_ends_session_and_redirects_with_state(client, rp, browser, id_token):
    """Test that a valid id_token_hint and registered URI end the session and redirect with state."""
    assert signed_in(browser, rp)
    response = client.get("/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": BYE, "state": "bye-state"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"{BYE}?state=bye-state"
    assert open_sessions() == []
    assert not signed_in(browser, rp)


def test_rp_initiated_logout_by_post(client, rp, browser, id_token):
    """Test that the same request sent as a POST form also ends the session and redirects."""
    response = client.post("/logout", data={
        "id_token_hint": id_token, "post_logout_redirect_uri": BYE, "state": "s"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"{BYE}?state=s"
    assert not signed_in(browser, rp)


def test_redirect_without_state_has_no_state(client, rp, id_token):
    """Test that without state the RP is sent to its URI unchanged."""
    response = client.get("/logout", query_string={"id_token_hint": id_token,
                                                   "post_logout_redirect_uri": BYE})
    assert response.headers["Location"] == BYE


def test_unregistered_post_logout_uri_is_not_followed(client, rp, browser, id_token):
    """Test that an unregistered post_logout_redirect_uri gets a page, though the session ends."""
    response = client.get("/logout", query_string={
        "id_token_hint": id_token, "post_logout_redirect_uri": "https://evil.example/bye",
        "state": "s"})
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert not signed_in(browser, rp)


def test_id_token_hint_alone_ends_session_with_page(client, rp, browser, id_token):
    """Test that an id_token_hint without post_logout_redirect_uri ends the session on a page."""
    response = client.get("/logout", query_string={"id_token_hint": id_token})
    assert response.status_code == 200
    assert not signed_in(browser, rp)


def test_expired_id_token_hint_is_accepted(client, rp, browser, id_token):
    """Test that an id_token_hint past its exp is still accepted (RP-Initiated Logout §2)."""
    exp = jwt_claims(id_token)["exp"]
    with freeze_time(dt.datetime.fromtimestamp(exp + 600, dt.UTC)):
        response = client.get("/logout", query_string={
            "id_token_hint": id_token, "post_logout_redirect_uri": BYE})
    assert response.status_code == 302
    assert response.headers["Location"] == BYE
    assert open_sessions() == []


def test_without_hint_get_asks_for_confirmation(client, rp, browser, id_token):
    """Test that GET without id_token_hint shows a confirmation form and keeps the session."""
    response = client.get("/logout", query_string={"client_id": rp.client_id,
                                                   "post_logout_redirect_uri": BYE})
    assert response.status_code == 200
    assert factories.csrf(response.text)
    assert '<form' in response.text and 'method="post"' in response.text
    assert len(open_sessions()) == 1
    assert signed_in(browser, rp)


def test_confirmation_form_post_ends_session(client, rp, browser, id_token):
    """Test that POSTing the confirmation page's form with its csrf_token ends the session."""
    page = client.get("/logout")
    response = client.post("/logout", data={"csrf_token": factories.csrf(page.text),
                                            "confirm": "yes"})
    assert response.status_code == 200
    assert open_sessions() == []
    assert not signed_in(browser, rp)


def test_confirmed_logout_without_hint_does_not_redirect(client, rp, browser, id_token):
    """Test that a confirmed logout without id_token_hint does not follow post_logout_redirect_uri."""
    page = client.get("/logout", query_string={"client_id": rp.client_id,
                                               "post_logout_redirect_uri": BYE})
    response = client.post("/logout", data={"csrf_token": factories.csrf(page.text),
                                            "client_id": rp.client_id,
                                            "post_logout_redirect_uri": BYE})
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert not signed_in(browser, rp)


def test_post_without_csrf_or_hint_is_refused(client, rp, browser, id_token):
    """Test that POST /logout with neither csrf_token nor id_token_hint is 400 and keeps the session."""
    response = client.post("/logout", data={"confirm": "yes"})
    assert response.status_code == 400
    assert len(open_sessions()) == 1
    assert signed_in(browser, rp)


def test_post_with_wrong_csrf_is_refused(client, rp, browser, id_token):
    """Test that POST /logout with a forged csrf_token is 400 and keeps the session."""
    response = client.post("/logout", data={"csrf_token": "forged", "confirm": "yes"})
    assert response.status_code == 400
    assert signed_in(browser, rp)


def test_foreign_id_token_hint_is_400(client, rp, browser, id_token):
    """Test that an id_token_hint signed by someone else is a 400 page, not a 500, and keeps the session."""
    response = client.get("/logout", query_string={
        "id_token_hint": foreign_id_token(rp), "post_logout_redirect_uri": BYE})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    assert signed_in(browser, rp)


def test_foreign_id_token_hint_with_our_kid_is_400(client, rp, browser, id_token):
    """Test that a foreign-signed id_token_hint naming our key id is a 400 page, not a 500."""
    our_kid = client.get("/jwks.json").json["keys"][0]["kid"]
    response = client.get("/logout", query_string={
        "id_token_hint": foreign_id_token(rp, kid=our_kid), "post_logout_redirect_uri": BYE})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert signed_in(browser, rp)


def test_garbage_id_token_hint_is_400(client, rp, browser, id_token):
    """Test that an id_token_hint that is not a JWT is a 400 page, not a 500."""
    response = client.get("/logout", query_string={"id_token_hint": "not-a-jwt"})
    assert response.status_code == 400
    assert signed_in(browser, rp)


def test_client_id_not_matching_hint_is_400(client, rp, browser, id_token):
    """Test that a client_id that is not the id_token_hint's aud is a 400 page (RP-Initiated Logout §2)."""
    other = factories.rp(rp.company_id, post_logout_redirect_uris=[BYE])
    response = client.get("/logout", query_string={
        "id_token_hint": id_token, "client_id": other.client_id,
        "post_logout_redirect_uri": BYE})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert signed_in(browser, rp)


def test_logout_is_audited(client, rp, id_token):
    """Test that an RP-initiated logout writes resident:session:end for the resident and client."""
    resident_id = db.session.scalar(select(BrowserSession.resident_id))
    client.get("/logout", query_string={"id_token_hint": id_token,
                                        "post_logout_redirect_uri": BYE})
    events = logout_events()
    assert events
    assert all(event.resident_id == resident_id for event in events)
    assert any(event.client_id == rp.client_id for event in events)


def test_logout_is_audited_once(client, rp, id_token):
    """Test that one RP-initiated logout writes exactly one resident:session:end event."""
    client.get("/logout", query_string={"id_token_hint": id_token,
                                        "post_logout_redirect_uri": BYE})
    events = logout_events()
    assert len(events) == 1
    assert events[0].client_id == rp.client_id


def test_confirmed_logout_is_audited(client, rp, id_token):
    """Test that a logout confirmed on the page writes one resident:session:end event."""
    page = client.get("/logout")
    client.post("/logout", data={"csrf_token": factories.csrf(page.text)})
    assert len(logout_events()) == 1


def test_logout_without_session_is_harmless(client, rp):
    """Test that an RP-initiated logout from a browser with no session still redirects, writing nothing."""
    factories.resident()
    other = client.application.test_client()
    id_token = tokens_for(other, rp, scope="openid email")["id_token"]
    response = client.get("/logout", query_string={"id_token_hint": id_token,
                                                   "post_logout_redirect_uri": BYE})
    assert response.status_code == 302
    assert logout_events() == []
    assert len(open_sessions()) == 1


def test_signing_in_again_after_logout_issues_usable_code(client, rp, browser, id_token):
    """Test that after logout, signing in again (consent in force) yields a code that redeems."""
    client.get("/logout", query_string={"id_token_hint": id_token})
    issued = tokens_for(client, rp, scope="openid email", browser=browser)
    assert jwt_claims(issued["id_token"])["sub"] == jwt_claims(id_token)["sub"]


# ---- an id_token_hint of another session or resident asks first (issue 12 item 16) ------

def test_hint_of_another_resident_asks_before_signing_this_browser_out(client, rp, browser,
                                                                      id_token):
    """Test that an ID token of another resident does not end this browser's session
    unasked: a confirmation page (CSRF-protected POST) comes first; confirming ends it
    and follows the registered post_logout_redirect_uri."""
    factories.resident("taro@example.jp")
    other = client.application.test_client()
    theirs = tokens_for(other, rp, scope="openid email",
                        browser=ResidentBrowser(other, "taro@example.jp"))["id_token"]
    page = client.get("/logout", query_string={"id_token_hint": theirs,
                                               "post_logout_redirect_uri": BYE, "state": "s"})
    assert page.status_code == 200
    assert 'method="post"' in page.text and factories.csrf(page.text)
    assert "別のログイン" in page.text
    assert signed_in(browser, rp)
    assert len(open_sessions()) == 2
    forged = client.post("/logout", data={"id_token_hint": theirs})
    assert forged.status_code == 400
    assert signed_in(browser, rp)
    response = client.post("/logout", data={"csrf_token": factories.csrf(page.text),
                                            "id_token_hint": theirs,
                                            "post_logout_redirect_uri": BYE, "state": "s"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"{BYE}?state=s"
    assert not signed_in(browser, rp)
    assert len(open_sessions()) == 1  # the other resident's session is untouched


def test_hint_of_another_session_of_the_same_resident_asks_first(client, rp, browser, id_token):
    """Test that an ID token of the same resident's session in another browser (its sid is
    not this session's) asks for confirmation too."""
    other = client.application.test_client()
    theirs = tokens_for(other, rp, scope="openid email",
                        browser=ResidentBrowser(other))["id_token"]
    assert jwt_claims(theirs)["sub"] == jwt_claims(id_token)["sub"]
    response = client.get("/logout", query_string={"id_token_hint": theirs, "ui_locales": "en"})
    assert response.status_code == 200
    assert factories.csrf(response.text)
    assert "another sign-in than the one on this browser" in response.text
    assert signed_in(browser, rp)
    assert len(open_sessions()) == 2


def test_hint_of_this_session_signs_out_without_asking(client, rp, browser, id_token):
    """Test that the hint of this browser's own session (sid and pairwise sub match) ends
    it at once, in English too."""
    response = client.get("/logout", query_string={"id_token_hint": id_token,
                                                   "ui_locales": "en"})
    assert response.status_code == 200
    assert "csrf_token" not in response.text
    assert not signed_in(browser, rp)
