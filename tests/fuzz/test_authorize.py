"""Property-based fuzzing of the HTML endpoints: /authorize and the device code form.

A signed-in resident with consent in force (the state in which a code is one
request away): thousands of parameter sets mixing valid values and junk.
Never a 5xx, never a redirect to an unregistered URI, and a code only when
every parameter that must be right is right.
"""

from __future__ import annotations

from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests import factories
from tests.factories import Browser
from tests.factories import csrf
from tests.factories import query

junk = st.one_of(st.text(max_size=40), st.text(alphabet='"\\<>&%\x00\n é', max_size=10),
                 st.sampled_from(["", " ", "null", "-1", "%00", "https://evil.example/cb"]),
                 # NUL reached PostgreSQL (500); lone surrogates and overlong values too.
                 st.sampled_from(["\x00", "n\x00once", "\ud800", "a\udfffb"]),
                 st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
                 st.builds(lambda c, n: c * n, st.sampled_from(["a", "\x00", "あ"]),
                           st.integers(8000, 9000)))


@pytest.fixture
def signed_in(app, client):
    factories.resident()
    rp = factories.rp()
    verifier, challenge = factories.pkce_pair()
    Browser(client).code_flow(rp, scope="openid email", code_challenge=challenge,
                              code_challenge_method="S256")
    return rp, challenge


def test_authorize_never_fails_and_issues_codes_only_for_valid_requests(client, signed_in):
    """Test that fuzzed authorization requests never 5xx and only valid ones get a code."""
    rp, challenge = signed_in

    @settings(max_examples=600, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(
        client_id=st.one_of(st.just(rp.client_id), junk),
        redirect_uri=st.one_of(st.just(rp.redirect_uri), junk),
        response_type=st.one_of(st.just("code"), junk),
        scope=st.one_of(st.just("openid email"), st.just("openid"), junk),
        code_challenge=st.one_of(st.just(challenge), junk, st.none()),
        code_challenge_method=st.one_of(st.just("S256"), junk, st.none()),
        prompt=st.one_of(st.none(), st.sampled_from(["none", "login", "consent", "none login"]),
                         junk),
        max_age=st.one_of(st.none(), st.integers(-5, 10**12).map(str), junk),
        extra=st.dictionaries(st.sampled_from(["state", "nonce", "ui_locales", "login_hint",
                                               "request", "claims", "id_token_hint"]), junk,
                              max_size=3),
    )
    def run(client_id, redirect_uri, response_type, scope, code_challenge,
            code_challenge_method, prompt, max_age, extra):
        params = {"client_id": client_id, "redirect_uri": redirect_uri,
                  "response_type": response_type, "scope": scope,
                  "code_challenge": code_challenge,
                  "code_challenge_method": code_challenge_method, "prompt": prompt,
                  "max_age": max_age, "nonce": factories.token(6), **extra}
        params = {k: v for k, v in params.items() if v is not None}
        # "surrogatepass": a lone surrogate goes out as its raw bytes, as a hostile client's would.
        response = client.get("/authorize?" + urlencode(params, errors="surrogatepass"))
        assert response.status_code < 500, response.text[:500]
        location = response.headers.get("Location", "")
        if response.status_code == 302 and urlsplit(location).netloc:
            # Off-site redirects go only to the registered redirect URI.
            assert location.startswith(rp.redirect_uri + "?"), location
            if "code" in query(location):
                # An empty redirect_uri counts as absent: the single registered one applies.
                assert client_id == rp.client_id and redirect_uri in (rp.redirect_uri, "")
                assert response_type == "code"
                assert code_challenge == challenge and code_challenge_method == "S256"
                assert scope in ("openid email", "openid")
                assert prompt in (None, "none")

    run()


def test_device_code_form_never_fails(client, signed_in):
    """Test that fuzzed user codes on the verification page never 5xx."""
    page = client.get("/device")
    token = csrf(page.text)

    @settings(max_examples=300, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(user_code=st.one_of(junk, st.text(alphabet="BCDFGHJKLMNPQRSTVWXZbcdf- ",
                                             max_size=12)))
    def run(user_code):
        body = urlencode({"user_code": user_code, "csrf_token": token}, errors="surrogatepass")
        response = client.post("/device", data=body,
                               content_type="application/x-www-form-urlencoded")
        assert response.status_code in (400, 429), response.status_code

    run()


def test_authorize_with_one_hostile_parameter_never_fails(client, signed_in):
    """Test that a valid request with one parameter replaced by a hostile value (NUL, lone
    surrogate, overlong: NUL reached PostgreSQL as a 500) gets a page or a redirect to the
    registered URI, never a 5xx."""
    rp, challenge = signed_in
    valid = {"client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
             "response_type": "code", "scope": "openid email", "state": "s",
             "code_challenge": challenge, "code_challenge_method": "S256"}

    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(name=st.sampled_from([*valid, "nonce", "login_hint", "ui_locales", "claims",
                                 "max_age", "prompt", "id_token_hint", "acr_values"]),
           value=st.one_of(st.sampled_from(["\x00", "n\x00once", "\ud800", "a" * 8193]),
                           st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
                           junk))
    def run(name, value):
        params = {**valid, "nonce": factories.token(6), name: value}
        response = client.get("/authorize?" + urlencode(params, errors="surrogatepass"))
        assert response.status_code < 500, response.text[:500]
        location = response.headers.get("Location", "")
        if response.status_code == 302 and urlsplit(location).netloc:
            assert location.startswith(rp.redirect_uri + "?"), location

    run()
