"""Our central promise as a property: no two companies can correlate a resident.

One resident signs in to two companies (two pairwise sectors) through every
channel a company can read. Each company's view is everything it received,
flattened to a set of values (``Received``): JSON bodies walked recursively
(keys and values, numbers included), JWTs decoded (header and claims), URLs
split into their query values, headers split into their words. The values the
two companies have in common may only be

- values every resident gets alike (issuer, scope names, error codes, key ids,
  lifetimes): the same journey is run for a *control* resident, in another
  browser at another time, and whatever the two companies received for the
  control resident is not about our resident; and
- profile values the resident consented to release (name, kana, email, birth
  year, gender, postal code, municipality, the date of the counter check).

Anything else they share — a ``sub``, a ``sid``, a proofing reference, a token,
a ``jti``, an opaque id, a timestamp of the resident's own sign-in — lets them
join their records on it, and fails the test, naming the value and where each
company got it. The clock is frozen and moved on by an odd number of seconds
before every step, so two companies can only share a timestamp that comes from
the resident's state, never one that comes from two requests in the same second.
The one timestamp they may share is the moment of a message we push to both at
once (a logout ends the session at every company): each learns it from the
arrival itself, so the logout token's ``iat`` and ``exp`` add nothing
(``Received.pushed``).

Channels covered: the code flow (the redirect back, the token response, the ID
token), UserInfo, refresh, verified_claims (ID token and UserInfo), registered_data
(item 5: a third company's contribution, released to both through data links, in
the ID token and UserInfo), introspection,
revocation, the device flow (device authorization, polling, tokens, touch events), back-channel
logout (logout tokens caught by a real HTTP receiver per company) and
RP-initiated logout, and error answers (error bodies, ``WWW-Authenticate``,
redirects with error parameters). Consent receipts are the resident's own
documents and reach no company (``idp.consent.receipts``); a feature that sends
one to a company adds it here.

**New features must extend it.** A feature that lets a company read anything
(a new endpoint, claim, token, notification, error or export) adds what it
sends to ``Journey``: drive the feature as the company would, for ``company``,
and hand every answer to ``company.seen`` — ``seen.response(r, where)`` for a
response the company reads itself, ``seen.redirect(r, where)`` for a redirect
the browser brings to the company, ``seen.value(v, where)`` for anything else
(a JWT, a JSON document, a URL, a string). Call the new step from
``Journey.run`` once per company. The property then covers it with no new
assertion; if the feature must share a new kind of consented profile value,
add it to ``consented()`` with the consent item that covers it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import pytest
from freezegun import freeze_time
from werkzeug.serving import make_server
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response

from idp.exchange import contracts
from idp.exchange import links
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.oauth import backchannel
from idp.oauth.claims import claims_for
from idp.proofing import service as proofing
from tests import factories
from tests.helpers import data_links
from tests.helpers.admin import enrolled_admin
from tests.helpers.app import IsolatedClient
from tests.helpers.app import flush_outbox
from tests.helpers.device import GRANT as DEVICE_GRANT
from tests.helpers.oauth import ResidentBrowser
from tests.helpers.oauth import introspect
from tests.helpers.oauth import redeem
from tests.helpers.oauth import refresh
from tests.helpers.oauth import userinfo

SCOPE = "openid name birth_year gender email postal_code registered:language offline_access"
VERIFIED = {"verification": {"trust_framework": None, "time": None,
                             "verification_process": None, "evidence": None},
            "claims": {"given_name": None, "family_name": None, "birthdate": None,
                       "address": None}}
CLAIMS = json.dumps({"id_token": {"verified_claims": VERIFIED, "registered_data": None},
                     "userinfo": {"verified_claims": VERIFIED}})
BYE = "https://rp.example.jp/bye"
# Transport, not content: the length of a body and the clock of the answer.
TRANSPORT_HEADERS = {"content-length", "date"}
# A compact JWS: three base64url parts, the first two JSON objects.
JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
WORDS = re.compile(r"[^\s,;=\"'()<>\[\]{}]+")
STEP = dt.timedelta(seconds=17)  # odd, so no two steps are a token lifetime apart
LOGOUT_WAIT = 10.0


# ---- what a company receives -----------------------------------------------------------

class Received:
    """Every value one company received, each with where it first came from.

    Reusable: give it Flask responses, redirects, JWTs, JSON, URLs or strings.
    """

    def __init__(self):
        self.where: dict[str, str] = {}
        self.by_key: dict[str, set[str]] = {}  # JSON member name → the values it held
        # Moments a message was pushed to the company (and that moment plus the
        # message's lifetime): it learns them from the arrival itself.
        self.arrivals: set[str] = set()

    @property
    def values(self) -> set[str]:
        return set(self.where)

    def response(self, response, where: str) -> None:
        """An answer the company reads itself: headers (but transport) and body."""
        for name, header in response.headers.items():
            if name.lower() not in TRANSPORT_HEADERS:
                self.value(header, f"{where} header {name}")
        if response.is_json:
            self.value(response.get_json(), f"{where} body")
        elif response.data:
            self.value(response.get_data(as_text=True), f"{where} body")

    def redirect(self, response, where: str) -> None:
        """A redirect the browser follows to the company: only its URL reaches it."""
        assert response.status_code in (302, 303), response.status_code
        self.value(response.headers["Location"], f"{where} redirect")

    def pushed(self, at: int, lifetime: int) -> None:
        """A message we sent the company on our own (not an answer) at ``at``."""
        self.arrivals |= {str(at), str(at + lifetime)}

    def value(self, value, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                self.value(key, where)
                self.value(item, f"{where}.{key}")
                if isinstance(item, str | int | float) and not isinstance(item, bool):
                    self.by_key.setdefault(key, set()).add(str(item))
        elif isinstance(value, list | tuple):
            for item in value:
                self.value(item, where)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, int | float):
            self._add(str(value), where)
        elif isinstance(value, str):
            self._string(value, where)
        else:  # pragma: no cover - a JSON document holds nothing else
            raise TypeError(f"cannot read {type(value).__name__} at {where}")

    def _string(self, text: str, where: str) -> None:
        self._add(text, where)
        if JWS.match(text):
            header, payload = text.split(".")[:2]
            self.value(_b64json(header), f"{where} (JWT header)")
            self.value(_b64json(payload), f"{where} (JWT)")
            return
        if text[:1] in "{[":
            try:
                self.value(json.loads(text), where)
                return
            except ValueError:
                pass
        parts = urlsplit(text)
        if parts.scheme in ("http", "https") and parts.query:
            for key, item in parse_qsl(parts.query):
                self._add(key, where)
                self.by_key.setdefault(key, set()).add(item)
                self._string(item, f"{where}?{key}")
            return
        for word in WORDS.findall(text):
            self._add(word, where)

    def _add(self, value: str, where: str) -> None:
        self.where.setdefault(value, where)


def _b64json(part: str):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# ---- back-channel logout receivers ------------------------------------------------------

class LogoutReceiver:
    """A company's back-channel logout endpoint: a real HTTP server on 127.0.0.1."""

    def __init__(self):
        self.tokens: list[str] = []
        self.arrived = threading.Event()

        @Request.application
        def app(request):
            self.tokens.append(request.form.get("logout_token", ""))
            self.arrived.set()
            return Response(status=200)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/backchannel-logout"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int) -> list[str]:
        """At least ``count`` tokens, waiting a bounded time for each."""
        while len(self.tokens) < count:
            self.arrived.clear()
            if len(self.tokens) >= count:
                break
            if not self.arrived.wait(LOGOUT_WAIT):
                break
        return list(self.tokens)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=LOGOUT_WAIT)


def logout_tokens(trigger, receivers: list[LogoutReceiver]):
    """Run ``trigger`` (whatever ends the session) and return its response and the
    logout tokens each receiver got from it, in order of ``receivers``.

    Logout tokens are outbox messages delivered after the change commits; the tests
    deliver them at the end of the request (``outbox_delivery = "inline"``), and
    ``flush_outbox`` delivers whatever is still due, as ``idp worker --once`` would.
    Then each receiver is waited for a bounded time, never a sleep.
    """
    before = [len(receiver.tokens) for receiver in receivers]
    response = trigger()
    flush_outbox()
    return response, [receiver.wait_for(count + 1)[count:]
                      for receiver, count in zip(receivers, before, strict=True)]


# ---- the journey ------------------------------------------------------------------------

@dataclass
class Company:
    name: str
    rp: factories.RP
    kiosk: factories.RP
    receiver: LogoutReceiver
    seen: Received = field(default_factory=Received)


class Journey:
    """One resident, in one browser, through every channel of both companies."""

    def __init__(self, app, email: str, companies: list[Company], clock):
        app.test_client_class = IsolatedClient
        self.client = app.test_client()
        # A company's servers call the back-channel endpoints without the resident's
        # browser cookies (which the IdP refreshes on every request that carries them).
        self.backend = app.test_client()
        self.browser = ResidentBrowser(self.client, email)
        self.companies = companies
        self.clock = clock
        self.issued: dict[str, dict] = {}  # company name → its latest token response
        self.code: tuple[str, str, str] | None = None  # (company name, code, verifier)
        self.rotated: str | None = None  # a refresh token already exchanged
        self.device_token: str | None = None  # the kiosk's access token for the resident

    def step(self) -> None:
        self.clock.tick(STEP)

    def run(self) -> None:
        for company in self.companies:
            self.code_flow(company)
            self.userinfo(company)
            self.introspection(company)
            self.refresh(company)
            self.device_flow(company)
            self.errors(company)
        self.logout()
        for company in self.companies:
            self.after_logout(company)

    def code_flow(self, company: Company) -> None:
        """The redirect back with the code, the token response and its ID token."""
        self.step()
        verifier, challenge = factories.pkce_pair()
        response = self.browser.authorize(company.rp, scope=SCOPE, claims=CLAIMS,
                                          code_challenge=challenge,
                                          code_challenge_method="S256")
        if "/login" in response.headers.get("Location", ""):
            uid = factories.query(response.headers["Location"])["interaction"]
            response = self.client.get(self.browser.login(interaction=uid).headers["Location"])
        if "/consent/" in response.headers.get("Location", ""):
            path = urlsplit(response.headers["Location"]).path
            response = self.browser.consent(path, scopes=[*SCOPE.split(), "verified_claims"])
        company.seen.redirect(response, "authorization response")
        code = factories.query(response.headers["Location"])["code"]
        self.step()
        answer = redeem(self.backend, company.rp, code, verifier)
        assert answer.status_code == 200, answer.text
        company.seen.response(answer, "token response")
        self.issued[company.name] = answer.json
        self.code = (company.name, code, verifier)

    def userinfo(self, company: Company) -> None:
        self.step()
        answer = userinfo(self.backend, self.issued[company.name]["access_token"])
        assert answer.status_code == 200, answer.text
        company.seen.response(answer, "userinfo")

    def introspection(self, company: Company) -> None:
        self.step()
        for kind in ("access_token", "refresh_token"):
            answer = introspect(self.backend, company.rp, self.issued[company.name][kind])
            assert answer.json["active"] is True, answer.text
            company.seen.response(answer, f"introspection of the {kind}")

    def refresh(self, company: Company) -> None:
        self.step()
        old = self.issued[company.name]["refresh_token"]
        answer = refresh(self.backend, company.rp, old)
        assert answer.status_code == 200, answer.text
        company.seen.response(answer, "refresh")
        self.issued[company.name] = {**self.issued[company.name], **answer.json}
        self.step()
        answer = userinfo(self.backend, answer.json["access_token"])
        assert answer.status_code == 200, answer.text
        company.seen.response(answer, "userinfo after refresh")
        self.rotated = old

    def device_flow(self, company: Company) -> None:
        """A kiosk of the company: device authorization, polls, the resident approves, tokens."""
        self.step()
        kiosk = company.kiosk
        answer = self.backend.post("/device_authorization", data={"scope": "openid touch_events"},
                                  auth=(kiosk.client_id, kiosk.client_secret))
        assert answer.status_code == 200, answer.text
        company.seen.response(answer, "device authorization")
        device_code, user_code = answer.json["device_code"], answer.json["user_code"]
        poll = self._poll(kiosk, device_code)
        assert poll.json["error"] == "authorization_pending", poll.text
        company.seen.response(poll, "device poll, pending")
        page = self.client.get("/device", query_string={"user_code": user_code})
        confirm = self.client.post("/device", data={"user_code": user_code,
                                                    "csrf_token": factories.csrf(page.text)})
        page = self.client.get(confirm.headers["Location"])
        assert page.status_code == 200, page.text
        self.client.post("/device/confirm", data={"decision": "allow",
                                                  "csrf_token": factories.csrf(page.text)})
        self.step()
        answer = self._poll(kiosk, device_code)
        assert answer.status_code == 200, answer.text
        company.seen.response(answer, "device token response")
        self.device_token = answer.json["access_token"]
        self.step()
        answer = self._poll(kiosk, device_code)
        company.seen.response(answer, "device poll, code already used")
        self.touch_events(company, self.device_token)

    def touch_events(self, company: Company, access_token: str) -> None:
        """The kiosk logs a touch for the resident, and sends one it gets wrong."""
        self.step()
        now = dt.datetime.now(dt.UTC).isoformat()
        for where, events, status in (
            ("touch events", [{"occurred_at": now, "target": "map"}], 201),
            ("touch events error", [{"occurred_at": "yesterday"}], 400),
        ):
            answer = self.backend.post("/api/touch-events", json={"events": events},
                                      headers={"Authorization": f"Bearer {access_token}"})
            assert answer.status_code == status, answer.text
            company.seen.response(answer, where)

    def _poll(self, kiosk, device_code: str):
        return self.backend.post("/token", data={"grant_type": DEVICE_GRANT,
                                                "device_code": device_code},
                                auth=(kiosk.client_id, kiosk.client_secret))

    def errors(self, company: Company) -> None:
        """Error answers: missing and bad bearer tokens, a replayed code, a rotated
        refresh token, a revoked token at introspection and UserInfo."""
        self.step()
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            answer = self.backend.get("/userinfo", headers=headers)
            assert answer.status_code == 401, answer.text
            company.seen.response(answer, f"userinfo error {headers or 'no token'}")
        name, code, verifier = self.code
        assert name == company.name
        issued = self.issued[company.name]
        answer = self.backend.post("/revoke", data={"token": issued["access_token"]},
                                  auth=(company.rp.client_id, company.rp.client_secret))
        assert answer.status_code == 200, answer.text
        company.seen.response(answer, "revocation")
        for where, answer, status in (
            ("introspection of a revoked token",
             introspect(self.backend, company.rp, issued["access_token"]), 200),
            ("userinfo with a revoked token", userinfo(self.backend, issued["access_token"]), 401),
            ("rotated refresh token", refresh(self.backend, company.rp, self.rotated), 400),
            ("replayed code", redeem(self.backend, company.rp, code, verifier), 400),
        ):
            assert answer.status_code == status, (where, answer.text)
            company.seen.response(answer, where)

    def logout(self) -> None:
        """RP-initiated logout by the first company: every company gets a logout token."""
        self.step()
        first = self.companies[0]
        hint = self.issued[first.name]["id_token"]

        def sign_out():
            return self.client.get("/logout", query_string={
                "id_token_hint": hint, "post_logout_redirect_uri": BYE, "state": "bye-1"})

        response, received = logout_tokens(sign_out, [c.receiver for c in self.companies])
        first.seen.redirect(response, "post-logout redirect")
        for company, tokens in zip(self.companies, received, strict=True):
            assert len(tokens) == 1, f"{company.name} got {len(tokens)} logout tokens"
            company.seen.value(tokens[0], "logout token")
            company.seen.pushed(int(time.time()), backchannel.LOGOUT_TOKEN_TTL)

    def after_logout(self, company: Company) -> None:
        """A silent sign-in after logout: an error redirect with error parameters."""
        self.step()
        response = self.browser.authorize(company.rp, scope=SCOPE, prompt="none")
        assert factories.query(response.headers["Location"])["error"] == "login_required"
        company.seen.redirect(response, "authorization error")


def consented(resident) -> set[str]:
    """The profile values the resident agreed to release (every consent item of SCOPE
    and "verified identity information", the day of the counter check included, and
    the registered data of item 5 with its source company's name)."""
    allowed = Received()
    allowed.value({k: v for k, v in claims_for(resident, SCOPE.split(), "").items()
                   if k != "sub"}, "profile")
    allowed.value(proofing.claim_values(resident), "verified claims")
    # Registered data (item 5): the value and the source company's name, never its ids.
    allowed.value([{"value": source.value, "sources": [source.company.name]}
                   for source in links.sources(resident.id, "language")], "registered data")
    allowed.value([item.verified_on.isoformat() for item in proofing.verified(resident)],
                  "date of the counter check")
    return allowed.values


def proofed(email: str, admin_id: str, days_ago: int, **profile):
    resident = factories.resident(email, **profile)
    proofing.record_proofing(resident.id, ["name", "birthdate", "address"], "my_number_card",
                             dt.date.today() - dt.timedelta(days=days_ago), admin_id)
    db.session.commit()
    return resident


@pytest.fixture
def receivers():
    made = [LogoutReceiver(), LogoutReceiver()]
    yield made
    for receiver in made:
        receiver.close()


def company(name: str, receiver: LogoutReceiver) -> Company:
    company_id = factories.company(name)
    contracts.create(company_id, ["language"], "多言語での案内",
                     valid_until=dt.date.today() + dt.timedelta(days=365))
    rp = factories.rp(company_id, backchannel_logout_uri=receiver.uri,
                      post_logout_redirect_uris=[BYE], verified_claims_allowed=True,
                      scopes=[*factories.ALL_SCOPES, "registered:language"])
    client, secret, _ = kiosks.create_kiosk(company_id, f"{name} kiosk", "北2条西4丁目")
    db.session.commit()
    return Company(name, rp, factories.RP(client.id, secret, company_id, ""), receiver)


def shared(first: Company, second: Company) -> set[str]:
    return first.seen.values & second.seen.values


def test_two_companies_share_nothing_but_consented_profile_values(app, receivers):
    """Test that one resident signed in to two companies through every channel gives
    them nothing in common but the profile values the resident consented to."""
    admin = enrolled_admin()
    resident = proofed("hanako@example.jp", admin.id, days_ago=3)
    control = proofed("taro@example.jp", admin.id, days_ago=5, family_name="函館",
                      given_name="太郎", family_name_kana="ハコダテ", given_name_kana="タロウ",
                      birth_year=1978, gender="male", postal_code="040-0001",
                      locality="函館市")
    # A third company contributed the language of both residents (registered data).
    source = data_links.setup_source("D社")
    data_links.contribute(resident.id, source.company_id, source.contract_id, "vi",
                          record_id="d-hanako")
    data_links.contribute(control.id, source.company_id, source.contract_id, "en",
                          record_id="d-taro")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with freeze_time(start) as clock:
        a = company("A社", receivers[0])
        b = company("B社", receivers[1])
        Journey(app, resident.email, [a, b], clock).run()
        clock.tick(dt.timedelta(hours=5, seconds=13))
        a_control, b_control = (Company(c.name, c.rp, c.kiosk, c.receiver) for c in (a, b))
        Journey(app, control.email, [a_control, b_control], clock).run()

    everyone = a_control.seen.values | b_control.seen.values
    profile = consented(resident)
    # One logout is pushed to both companies at one moment: they learn that moment
    # from the arrival, whatever the logout token's iat and exp say.
    pushed_together = a.seen.arrivals & b.seen.arrivals
    linking = sorted(shared(a, b) - everyone - profile - pushed_together)
    assert not linking, "values both companies received for the same resident:\n" + "\n".join(
        f"  {value!r}: A from {a.seen.where[value]}, B from {b.seen.where[value]}"
        for value in linking)

    # The journey reached what it means to test: both companies got the profile, and
    # each got identifiers of its own on every channel that carries one.
    assert {"hanako@example.jp", "札幌 花子", "ハナコ", "1990", "060-0042",
            "札幌市中央区", "vi"} <= shared(a, b) & profile
    for seen in (a.seen, b.seen):
        assert "vi" in seen.by_key["value"] and "D社" in seen.values
        # First seen in the ID token (asked for through the claims parameter).
        assert "(JWT)" in seen.where["registered_data"], seen.where["registered_data"]
    for key in ("sub", "sid", "jti", "verification_process", "access_token", "refresh_token",
                "device_code", "code"):
        assert a.seen.by_key.get(key) and b.seen.by_key.get(key), key


def test_the_collector_finds_values_wherever_they_hide(app):
    """Test that Received finds a value inside a JWT inside a redirect's query, a word of a
    header, a nested JSON member and a JSON document in a string, and skips transport."""
    claims = base64.urlsafe_b64encode(json.dumps({"sid": "planted-sid"}).encode()).decode()
    jws = f"eyJhbGciOiJub25lIn0.{claims.rstrip('=')}.sig"
    seen = Received()
    seen.redirect(Response(status=302, headers={
        "Location": f"https://rp.example.jp/cb?state=s&logout_token={jws}"}), "redirect")
    seen.response(Response('{"a": [{"b": "planted-nested"}], "n": 1796246502}', status=401,
                           mimetype="application/json",
                           headers={"WWW-Authenticate":
                                    'Bearer error="invalid_token", error_description='
                                    '"token planted-word revoked"'}), "answer")
    seen.value('{"inner": "planted-json"}', "string")
    assert {"planted-sid", "planted-nested", "1796246502", "planted-word",
            "planted-json", "none"} <= seen.values
    assert seen.by_key["sid"] == {"planted-sid"}
    assert not any(where.endswith("Content-Length") for where in seen.where.values())
