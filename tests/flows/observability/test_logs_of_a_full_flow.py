"""A resident's whole journey, logged as production logs it: every line is one JSON object
with a request id, and no line holds a token, a code, a password or personal data."""

from __future__ import annotations

import base64
import json
import logging
import re
from urllib.parse import parse_qs
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from idp.accounts.models import Resident
from idp.extensions import db
from tests import factories
from tests.helpers.accounts import link_in
from tests.helpers.accounts import mails_to
from tests.helpers.accounts import post_form
from tests.helpers.logs import json_lines
from tests.helpers.oauth import introspect
from tests.helpers.oauth import redeem
from tests.helpers.oauth import refresh
from tests.helpers.oauth import userinfo

EMAIL = "jiro.observe@example.jp"
PASSWORD = "tokeidai clock tower 1878"
PROFILE = {"family_name": "時計台", "given_name": "次郎", "family_name_kana": "トケイダイ",
           "given_name_kana": "ジロウ", "birth_year": "1979", "gender": "male",
           "postal_code": "060-0001", "locality": "札幌市中央区"}


def register(client) -> list[str]:
    post_form(client, "/register", {"email": EMAIL})
    (message,) = [m for m in mails_to(EMAIL) if "/register/complete" in m.body]
    link = link_in(message, "/register/complete")
    page = client.get(link)
    token = parse_qs(urlsplit(link).query)["token"][0]
    version = re.search(r'name="terms_version" value="([^"]+)"', page.text).group(1)
    response = client.post("/register/complete", data={
        **PROFILE, "password": PASSWORD, "password_confirm": PASSWORD, "token": token,
        "terms_version": version, "agree_provision": "yes", "agree_collection": "yes",
        "agree_terms": "yes", "csrf_token": factories.csrf(page.text)})
    assert response.status_code == 302, response.text
    return [token, link]


def scrape(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_full_flow_logs_are_json_and_hold_no_secrets_or_personal_data(app, client):
    """Test that registration, a failed and a good sign-in, consent, tokens, userinfo,
    refresh, introspection, revocation and logout log JSON lines without secrets."""
    rp = factories.rp()
    with json_lines(logging.DEBUG) as lines:
        secrets = register(client)
        factories.Browser(client).login(EMAIL, "a wrong password here")
        verifier, challenge = factories.pkce_pair()
        browser = factories.Browser(client)
        browser.login = lambda email=EMAIL, password=PASSWORD, interaction=None: \
            factories.Browser.login(browser, email, password, interaction)
        result = browser.code_flow(rp, scope="openid name email offline_access",
                                   code_challenge=challenge, code_challenge_method="S256",
                                   login_hint=EMAIL)
        tokens = redeem(client, rp, result["code"], verifier).json
        assert userinfo(client, tokens["access_token"]).status_code == 200
        refreshed = refresh(client, rp, tokens["refresh_token"]).json
        assert introspect(client, rp, refreshed["access_token"]).json["active"] is True
        # The spent code again: refused, audited, logged without the code.
        assert redeem(client, rp, result["code"], verifier).status_code == 400
        client.post("/revoke", data={"token": refreshed["refresh_token"]},
                    auth=(rp.client_id, rp.client_secret))
        client.get("/logout", query_string={"id_token_hint": tokens["id_token"]})
        logged = lines()

    resident = db.session.query(Resident).filter_by(email=EMAIL).one()
    claims = json.loads(base64.urlsafe_b64decode(tokens["id_token"].split(".")[1] + "=="))
    cookie = client.get_cookie("machi_id_session")
    forbidden = {
        "email": EMAIL, "email local part": EMAIL.split("@")[0], "password": PASSWORD,
        "wrong password": "a wrong password here", "sub": claims["sub"],
        "resident id": resident.id, "code": result["code"], "verifier": verifier,
        "access token": tokens["access_token"], "refresh token": tokens["refresh_token"],
        "id token": tokens["id_token"], "new access token": refreshed["access_token"],
        "new refresh token": refreshed["refresh_token"], "client secret": rp.client_secret,
        "registration token": secrets[0],
        **{f"profile {k}": v for k, v in PROFILE.items() if k not in ("gender", "birth_year")},
    }
    if cookie is not None:
        forbidden["session cookie"] = cookie.value
    requests = [line for line in logged if line["logger"] == "idp.request"]
    assert len(requests) >= 12
    for line in requests:
        assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
        assert {"method", "path", "endpoint", "status", "duration_ms", "client_id"} <= set(line)
        assert "?" not in line["path"]
    assert {line["client_id"] for line in requests
            if line["endpoint"] == "oauth.token"} == {rp.client_id}
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in logged)
    for what, value in forbidden.items():
        assert value not in text, f"the {what} is in the logs"
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text), "an email address is in the logs"
    assert not re.search(r"eyJ[\w-]{10,}", text), "a JWT is in the logs"


def test_full_flow_moves_the_counters(app, client):
    """Test that the flow's steps appear in the scraped metrics."""
    factories.resident()
    rp = factories.rp()
    before = scrape(client)
    body = factories.tokens(client, rp)
    refresh(client, rp, body["refresh_token"])
    after = scrape(client)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("machi_id_tokens_issued_total", grant_type="authorization_code",
                 company="other") == 1
    assert moved("machi_id_tokens_issued_total", grant_type="refresh_token",
                 company="other") == 1
    assert moved("machi_id_http_request_duration_seconds_count", endpoint="oauth.token",
                 method="POST", status="200") == 2
