"""The whole code flow over real HTTP, driven by an independent OAuth client library.

requests-oauthlib (oauthlib) plays the relying party; a plain requests session
plays the resident's browser; the IdP is served on a loopback port.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from requests_oauthlib import OAuth2Session

from idp.extensions import db
from tests import factories
from tests.factories import csrf
from tests.helpers.live import serve


@pytest.fixture
def live(app, migrated, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # loopback http only
    # The resident may untick items, so the granted scope can be narrower.
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    factories.resident()
    rp = factories.rp()
    db.session.rollback()
    with serve(migrated) as base:
        yield base, rp



def browse_to_callback(browser: requests.Session, url: str) -> str:
    """Follow the IdP's pages as a resident would; return the callback URL."""
    response = browser.get(url, allow_redirects=False)
    login_url = urljoin(url, response.headers["Location"])
    page = browser.get(login_url)
    interaction = re.search(r'name="interaction" value="([^"]+)"', page.text).group(1)
    response = browser.post(urljoin(url, "/login"), allow_redirects=False, data={
        "email": "hanako@example.jp", "password": factories.PASSWORD,
        "interaction": interaction, "csrf_token": csrf(page.text)})
    response = browser.get(urljoin(url, response.headers["Location"]), allow_redirects=False)
    consent_url = urljoin(url, response.headers["Location"])
    page = browser.get(consent_url)
    assert "同意してはじめる" in page.text
    response = browser.post(consent_url, allow_redirects=False, data=[
        ("csrf_token", csrf(page.text)), ("decision", "allow"),
        ("scope", "openid"), ("scope", "email"), ("scope", "name")])
    return response.headers["Location"]


def test_code_flow_with_requests_oauthlib(live):
    """Test that an independent client library completes the flow and gets consented claims."""
    base, rp = live
    config = requests.get(base + "/.well-known/openid-configuration", timeout=10).json()
    assert config["issuer"] == base
    oauth = OAuth2Session(rp.client_id, redirect_uri=rp.redirect_uri,
                          scope=["openid", "email", "name", "gender"], pkce="S256")
    url, state = oauth.authorization_url(config["authorization_endpoint"], nonce="e2e-nonce")
    callback = browse_to_callback(requests.Session(), url)
    assert callback.startswith(rp.redirect_uri)
    token = oauth.fetch_token(config["token_endpoint"], authorization_response=callback,
                              client_secret=rp.client_secret, timeout=10)
    assert set(token["scope"]) == {"openid", "email", "name"}  # gender was unticked
    keys = KeySet.import_key_set(requests.get(config["jwks_uri"], timeout=10).json())
    claims = jwt.decode(token["id_token"], keys).claims
    assert claims["iss"] == base and claims["aud"] == rp.client_id
    assert claims["nonce"] == "e2e-nonce"
    userinfo = oauth.get(config["userinfo_endpoint"], timeout=10).json()
    assert userinfo["sub"] == claims["sub"]
    assert userinfo["email"] == "hanako@example.jp" and userinfo["name"] == "札幌 花子"
    assert "gender" not in userinfo
