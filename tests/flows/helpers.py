"""Shared steps for the flow tests: sign in, consent and redeem a code for tokens."""

from __future__ import annotations

import json
from base64 import urlsafe_b64decode

from tests import factories


class ResidentBrowser(factories.Browser):
    """A browser that signs in as a given resident (Browser signs in as the default one)."""

    def __init__(self, client, email: str = "hanako@example.jp"):
        super().__init__(client)
        self.email = email

    def login(self, email=None, password=factories.PASSWORD, interaction=None):
        return super().login(email or self.email, password, interaction)


def redeem(client, rp: factories.RP, code: str, verifier: str):
    """POST the code to /token as the RP would; confidential RPs use HTTP Basic."""
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": rp.redirect_uri, "code_verifier": verifier}
    if rp.client_secret is None:
        return client.post("/token", data={**data, "client_id": rp.client_id})
    return client.post("/token", data=data, auth=(rp.client_id, rp.client_secret))


def tokens_for(client, rp: factories.RP, scope: str = "openid name email", *,
               browser: factories.Browser | None = None, consent_scopes=None,
               **params) -> dict:
    """Run the code flow (PKCE S256) for this RP and return the token response body."""
    browser = browser or factories.Browser(client)
    verifier, challenge = factories.pkce_pair()
    result = browser.code_flow(rp, scope=scope, consent_scopes=consent_scopes,
                               code_challenge=challenge, code_challenge_method="S256",
                               **params)
    assert "code" in result, result
    response = redeem(client, rp, result["code"], verifier)
    assert response.status_code == 200, response.text
    return response.json


def refresh(client, rp: factories.RP, refresh_token: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if rp.client_secret is None:
        return client.post("/token", data={**data, "client_id": rp.client_id})
    return client.post("/token", data=data, auth=(rp.client_id, rp.client_secret))


def introspect(client, rp: factories.RP, token: str, **params):
    return client.post("/introspect", data={"token": token, **params},
                       auth=(rp.client_id, rp.client_secret))


def userinfo(client, access_token: str, method: str = "GET"):
    return client.open("/userinfo", method=method,
                       headers={"Authorization": f"Bearer {access_token}"})


def jwt_claims(token: str) -> dict:
    """The payload of a compact JWS, unverified (for reading `sub` off an ID token)."""
    payload = token.split(".")[1]
    return json.loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
