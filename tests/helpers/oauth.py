"""Shared steps for the flow tests: sign in, consent and redeem a code for tokens."""

from __future__ import annotations

import json
import threading
from base64 import urlsafe_b64decode
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs
from urllib.parse import urlsplit

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


class RelyingParty:
    """A back-channel logout endpoint: records each POST, answers ``status``."""

    def __init__(self):
        self.received: list[dict] = []
        self.status = 200
        # Called with each logout token before the answer (a relying party that
        # calls back, e.g. /revoke as mod_auth_openidc does).
        self.on_receive = None
        rp = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length).decode()
                rp.received.append({"path": self.path,
                                    "content_type": self.headers.get("Content-Type"),
                                    "form": parse_qs(body)})
                if rp.on_receive is not None:
                    rp.on_receive(parse_qs(body)["logout_token"][0])
                self.send_response(rp.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/backchannel-logout"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def tokens(self) -> list[str]:
        return [r["form"]["logout_token"][0] for r in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class EventReceiver:
    """A security event receiver (RFC 8935 push): records each POST as it came (headers
    and the raw body, a SET), answers ``status`` with ``body`` (JSON) if set."""

    def __init__(self):
        self.received: list[dict] = []
        self.status = 202
        self.body: dict | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                receiver.received.append({
                    "path": self.path, "content_type": self.headers.get("Content-Type"),
                    "accept": self.headers.get("Accept"),
                    "body": self.rfile.read(length).decode()})
                answer = json.dumps(receiver.body).encode() if receiver.body else b""
                self.send_response(receiver.status)
                if answer:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def tokens(self) -> list[str]:
        return [r["body"] for r in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def consent_screen(client, rp, scope: str):
    """Sign in and open the consent page for this scope; return (browser, path, page)."""
    _, challenge = factories.pkce_pair()
    browser = factories.Browser(client)
    response = browser.authorize(rp, scope=scope, code_challenge=challenge,
                                 code_challenge_method="S256")
    assert response.status_code == 302, response.text
    uid = factories.query(response.headers["Location"])["interaction"]
    response = client.get(browser.login(interaction=uid).headers["Location"])
    path = urlsplit(response.headers["Location"]).path
    assert path.startswith("/consent/"), response.headers["Location"]
    return browser, path, client.get(path).text
