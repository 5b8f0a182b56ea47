"""Small builders for companies, clients and residents, through the real services."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

from idp.accounts import service as accounts
from idp.clients import service as clients
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.secrets import token
from idp.terms import service as terms

REDIRECT_URI = "https://rp.example.jp/callback"
PASSWORD = "correct horse battery"
ALL_SCOPES = ["openid", "name", "birth_year", "gender", "email", "postal_code", "offline_access"]


@dataclass
class RP:
    client_id: str
    client_secret: str | None
    company_id: str
    redirect_uri: str = REDIRECT_URI


def company(name: str = "A社") -> str:
    row = clients.create_company(name)
    db.session.commit()
    return row.id


def rp(company_id: str | None = None, *, public: bool = False, scopes=None, grant_types=None,
       redirect_uris=None, **kwargs) -> RP:
    company_id = company_id or company()
    client, secret = clients.register_client(
        company_id, "XXXサービス",
        redirect_uris=redirect_uris or [REDIRECT_URI],
        public=public,
        scopes=scopes or ALL_SCOPES,
        grant_types=grant_types or ["authorization_code", "refresh_token"],
        purpose="テスト用サービスの提供",
        **kwargs,
    )
    db.session.commit()
    return RP(client.id, secret, company_id, (redirect_uris or [REDIRECT_URI])[0])


def resident(email: str = "hanako@example.jp", password: str = PASSWORD, *,
             terms_accepted: bool = True, **profile):
    """A verified resident who has accepted the terms in force (unless told otherwise)."""
    defaults = dict(family_name="札幌", given_name="花子", family_name_kana="サッポロ",
                    given_name_kana="ハナコ", birth_year=1990, gender="female",
                    postal_code="060-0042", locality="札幌市中央区")
    defaults.update(profile)
    row = accounts.create_resident(
        email, password, accounts.Profile(**defaults), email_verified=True,
        terms_version=terms.current_version() if terms_accepted else None)
    db.session.commit()
    return row


def pkce_pair() -> tuple[str, str]:
    verifier = token(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Browser:
    """A resident's browser on the Flask test client (flaskr's AuthActions)."""

    def __init__(self, client):
        self.client = client

    def login(self, email="hanako@example.jp", password=PASSWORD, interaction=None):
        page = self.client.get("/login", query_string={"interaction": interaction or ""})
        data = {"email": email, "password": password, "csrf_token": csrf(page.text)}
        if interaction:
            data["interaction"] = interaction
        return self.client.post("/login", data=data)

    def authorize(self, rp: RP, scope="openid name email", **params):
        args = {"response_type": "code", "client_id": rp.client_id,
                "redirect_uri": rp.redirect_uri, "scope": scope, "state": "st-123",
                "nonce": token(8), **params}
        args = {k: v for k, v in args.items() if v is not None}
        return self.client.get("/authorize?" + urlencode(args))

    def consent(self, location: str, decision="allow", scopes=None):
        page = self.client.get(location)
        assert page.status_code == 200, page.text
        form = {"csrf_token": csrf(page.text), "decision": decision}
        body = urlencode([*form.items(), *[("scope", s) for s in (scopes or [])]])
        return self.client.post(location, data=body,
                                content_type="application/x-www-form-urlencoded")

    def code_flow(self, rp: RP, scope="openid name email", consent_scopes=None, **params):
        """Sign in (if needed), consent (if asked) and return the redirect's query."""
        response = self.authorize(rp, scope=scope, **params)
        if "/login" in response.headers.get("Location", ""):
            uid = query(response.headers["Location"])["interaction"]
            response = self.login(interaction=uid)
            response = self.client.get(response.headers["Location"])
        if "/consent/" in response.headers.get("Location", ""):
            path = urlsplit(response.headers["Location"]).path
            response = self.consent(path, scopes=consent_scopes or scope.split())
        assert response.status_code == 302, response.text
        return query(response.headers["Location"])


def exchange(client, rp: RP, code: str, verifier: str | None = None, **extra):
    """POST the code to /token with client_secret_basic (or client_id for public clients)."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            **extra}
    if verifier:
        data["code_verifier"] = verifier
    if rp.client_secret:
        return client.post("/token", data=data, auth=(rp.client_id, rp.client_secret))
    return client.post("/token", data={**data, "client_id": rp.client_id})


def tokens(client, rp: RP, scope: str = "openid name email offline_access", **params):
    """Run the whole code flow (PKCE S256) and return the token response JSON."""
    verifier, challenge = pkce_pair()
    result = Browser(client).code_flow(rp, scope=scope, code_challenge=challenge,
                                       code_challenge_method="S256", **params)
    response = exchange(client, rp, result["code"], verifier)
    assert response.status_code == 200, response.text
    return response.json


def kiosk_token(client, name: str = "サイネージ", location: str = "北2条広場") -> tuple[str, str, str]:
    """A kiosk of a new company and a client-credentials ``touch_events`` token for it:
    (kiosk client id, its secret, the access token)."""
    row, secret, _ = kiosks.create_kiosk(company("C社"), name, location)
    kiosk_id = row.id
    db.session.commit()
    answer = client.post("/token", data={"grant_type": "client_credentials",
                                         "scope": "touch_events"}, auth=(kiosk_id, secret))
    db.session.rollback()
    return kiosk_id, secret, answer.json["access_token"]
