"""The demo's contribute button (demo/relying_party.py, POST /contribute) against a served
IdP: A社's demo app gets a client_credentials token and sends the signed-in resident's
registered data by A社's own pairwise sub; B社 then receives it on the resident's consent.

The IdP and the demo app are each served on a loopback port (real HTTP, as in
``idp demo``); a requests session plays the resident's browser. Nothing is written
outside the test's database.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import pytest
import requests
from sqlalchemy import select

from demo.relying_party import create_app as create_rp
from idp.access.subjects import subject_for
from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.exchange import contracts
from idp.exchange.models import RegisteredRecord
from idp.extensions import db
from tests import factories
from tests.factories import csrf
from tests.helpers import data_links
from tests.helpers.data_links import consent
from tests.helpers.live import serve
from tests.helpers.live import serve_wsgi
from tests.helpers.oauth import userinfo

SCOPE = "openid name"


class Demo:
    def __init__(self, base: str, setup: data_links.Exchange, resident_id: str):
        self.base = base
        self.setup = setup
        self.resident_id = resident_id
        self.browser = requests.Session()

    def sign_in(self) -> None:
        """Sign in at A社's demo app through the IdP's login and consent pages."""
        response = self.browser.get(self.base + "/login", allow_redirects=False)
        authorize = response.headers["Location"]
        response = self.browser.get(authorize, allow_redirects=False)
        login_url = urljoin(authorize, response.headers["Location"])
        page = self.browser.get(login_url)
        interaction = re.search(r'name="interaction" value="([^"]+)"', page.text).group(1)
        response = self.browser.post(urljoin(authorize, "/login"), allow_redirects=False, data={
            "email": "hanako@example.jp", "password": factories.PASSWORD,
            "interaction": interaction, "csrf_token": csrf(page.text)})
        response = self.browser.get(urljoin(authorize, response.headers["Location"]),
                                    allow_redirects=False)
        consent_url = urljoin(authorize, response.headers["Location"])
        page = self.browser.get(consent_url)
        response = self.browser.post(consent_url, allow_redirects=False, data=[
            ("csrf_token", csrf(page.text)), ("decision", "allow"),
            *(("scope", s) for s in SCOPE.split())])
        callback = response.headers["Location"]
        assert callback.startswith(self.base + "/callback"), callback
        home = self.browser.get(callback)
        assert "ログインしました" in home.text, home.text

    def press_contribute(self, csrf_value: str | None = None) -> requests.Response:
        """Press コンソーシアムへ提供; the demo's page after its redirect."""
        page = self.browser.get(self.base + "/")
        assert "コンソーシアムへ提供" in page.text
        token = re.search(r'name="csrf"\s+value="([^"]+)"', page.text).group(1)
        return self.browser.post(self.base + "/contribute",
                                 data={"csrf": csrf_value if csrf_value is not None else token})


@pytest.fixture
def demo(app, migrated):
    """A社 (contributes language) with its demo app, B社 (receives language), Hanako."""
    resident_id = factories.resident().id
    setup = data_links.setup()
    holder: dict = {}
    with serve(migrated) as idp:
        def make(base):
            a_rp = factories.rp(
                setup.source_company, redirect_uris=[f"{base}/callback"],
                post_logout_redirect_uris=[f"{base}/"],
                grant_types=["authorization_code", "refresh_token", "client_credentials"],
                scopes=[*factories.ALL_SCOPES, "contribute:language"])
            holder["a_rp"] = a_rp
            return create_rp(idp, a_rp.client_id, a_rp.client_secret, f"{base}/callback",
                             scope=SCOPE, contributes={"language": "ja"})

        with serve_wsgi(make) as base:
            # SQLite: an open read transaction of the test would block the IdP's writes.
            db.session.rollback()
            yield Demo(base, setup, resident_id), holder["a_rp"]


def records() -> list[dict]:
    """The stored records, as the served IdP committed them (read, then the test's
    transaction ends: on SQLite it would block the IdP's next write)."""
    db.session.rollback()
    rows = [{"resident_id": r.resident_id, "company_id": r.company_id,
             "client_id": r.client_id, "contract_id": r.contract_id, "category": r.category,
             "value": r.value, "record_id": r.record_id}
            for r in db.session.scalars(select(RegisteredRecord).order_by(RegisteredRecord.id))]
    db.session.rollback()
    return rows


def flashes(page: requests.Response) -> str:
    return " ".join(html.unescape(m) for m in re.findall(r'<div class="box (?:ok|error)">([^<]*)',
                                                         page.text))


def test_the_contribute_button_reaches_the_idp_by_the_companys_own_sub(client, demo):
    """Test that the button stores the value for the signed-in resident, found by A社's
    own sub, with A社's client and contract as its provenance; pressing it again is a
    duplicate; and B社 then receives it, naming A社, on the resident's consent."""
    demo, a_rp = demo
    demo.sign_in()
    page = demo.press_contribute()
    assert page.status_code == 200
    assert "Registered data contributed: stored 1, already held 0" in flashes(page)
    (row,) = records()
    assert row == {"resident_id": demo.resident_id, "company_id": demo.setup.source_company,
                   "client_id": a_rp.client_id, "contract_id": demo.setup.source_contract,
                   "category": "language", "value": "ja", "record_id": row["record_id"]}
    assert row["record_id"].startswith("demo-language-")
    # The sub the demo signed in with and sent is A社's pairwise one for Hanako.
    a_sub = subject_for(demo.resident_id, demo.setup.source_company)
    assert f"<code>{a_sub}</code>" in page.text
    (audit,) = db.session.scalars(select(AuditEvent).where(
        AuditEvent.tag == str(AuditTag.RECORD_CONTRIBUTE)))
    assert audit.resident_id == demo.resident_id and audit.client_id == a_rp.client_id
    db.session.rollback()

    again = demo.press_contribute()
    assert "stored 0, already held 1" in flashes(again)
    assert len(records()) == 1

    body = consent(client, demo.setup.rp)
    assert userinfo(client, body["access_token"]).json["registered_data"] == {
        "language": {"value": "ja", "sources": ["A社"]}}


def test_the_button_without_its_csrf_value_stores_nothing(demo):
    """Test that a POST /contribute without the page's CSRF value is refused (400)."""
    demo, _ = demo
    demo.sign_in()
    assert demo.press_contribute(csrf_value="forged").status_code == 400
    assert records() == []


def test_the_button_says_why_when_the_contract_has_ended(demo):
    """Test that once A社's contract ended the button reports the IdP's refusal (the
    token endpoint's invalid_scope, saying the contract was ended) and nothing is stored."""
    demo, _ = demo
    demo.sign_in()
    contracts.end(demo.setup.source_contract)
    db.session.commit()
    page = demo.press_contribute()
    message = flashes(page)
    assert "Contribution failed" in message and "was ended" in message
    assert records() == []
