"""The data exchange end to end, over HTTP only (the issue's done-when):

A社 contributes ``language`` for a resident through ``POST /api/registered-data`` (a
client_credentials token with ``contribute:language``, the resident named by A社's own
pairwise ``sub``); B社 asks for ``registered:language``; the resident sees A社 named as the
source on the consent screen and consents; B社 receives the value at UserInfo and never
A社's ``sub``; the resident withdraws the link on /account/consents; B社's next read no
longer carries it, and B社 receives a signed ``data-link-ended`` Security Event Token.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.db import utcnow
from idp.exchange import categories
from idp.exchange import contracts
from idp.exchange.models import DataLink
from idp.extensions import db
from tests import factories
from tests.helpers.accounts import post_form
from tests.helpers.oauth import EventReceiver
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import tokens_for

LINK_ENDED = "urn:machi-id:secevent:data-link-ended"


@pytest.fixture
def receiver():
    server = EventReceiver()
    yield server
    server.close()


@pytest.fixture
def companies(app, receiver):
    """A社 (contributes language; its service signs residents in and its backend
    contributes) and B社 (receives language, with an event receiver)."""
    categories.ensure_defaults()
    a_company, b_company = factories.company("A社"), factories.company("B社")
    until = (utcnow().date().replace(year=utcnow().year + 1))
    contracts.create(a_company, ["language"], "多言語対応サービスの提供", valid_until=until)
    contracts.create(b_company, ["language"], "観光案内を母語で届けるため", valid_until=until)
    db.session.commit()
    a = factories.rp(a_company, scopes=["openid", "name", "contribute:language"],
                     grant_types=["authorization_code", "refresh_token", "client_credentials"])
    b = factories.rp(b_company, scopes=["openid", "name", "registered:language"],
                     redirect_uris=["https://b.example.jp/callback"],
                     event_receiver_uri=receiver.uri)
    factories.resident()
    return a, b


def userinfo(client, access_token: str):
    return client.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def test_a_contributes_b_receives_on_consent_then_the_link_is_withdrawn(client, companies,
                                                                       receiver):
    """Test the whole story of a data link, from contribution to withdrawal."""
    a, b = companies
    browser = factories.Browser(client)
    # The resident uses A社's service: A社 learns its own pairwise sub.
    a_sub = jwt_claims(tokens_for(client, a, "openid name", browser=browser)["id_token"])["sub"]

    # A社's backend contributes the resident's language.
    cc = client.post("/token", data={"grant_type": "client_credentials",
                                     "scope": "contribute:language"},
                     auth=(a.client_id, a.client_secret))
    assert cc.status_code == 200, cc.text
    record = {"sub": a_sub, "category": "language", "value": "ja", "record_id": "lang-1",
              "collected_at": "2026-12-01T09:00:00+09:00"}
    stored = client.post("/api/registered-data", json={"records": [record]},
                         headers={"Authorization": f"Bearer {cc.json['access_token']}"})
    assert stored.status_code == 201 and stored.json == {"stored": 1, "duplicates": 0}

    # B社 asks for registered:language: the consent screen names A社 as the source.
    start = browser.authorize(b, scope="openid registered:language")
    location = start.headers["Location"]
    assert "/consent/" in location, location
    page = client.get(urlsplit(location).path)
    assert page.status_code == 200
    assert 'value="registered:language"' in page.text
    assert "A社" in page.text and "link_expiry" in page.text
    b_tokens = tokens_for(client, b, "openid registered:language", browser=browser)
    b_sub = jwt_claims(b_tokens["id_token"])["sub"]
    assert b_sub != a_sub

    info = userinfo(client, b_tokens["access_token"])
    assert info.status_code == 200
    assert info.json["registered_data"] == {"language": {"value": "ja", "sources": ["A社"]}}
    assert a_sub not in info.text and "lang-1" not in info.text and a.client_id not in info.text

    # The resident withdraws the link alone (the consent to B社 stays).
    db.session.rollback()
    link = db.session.query(DataLink).one()
    assert link.client_id == b.client_id and link.source_company.name == "A社"
    withdrawn = post_form(client, "/account/consents", {"link_id": str(link.id), "confirm": "yes"})
    assert withdrawn.status_code == 303

    again = userinfo(client, b_tokens["access_token"])
    assert again.status_code == 200 and "registered_data" not in again.json
    assert again.json["sub"] == b_sub

    # B社 was told, with a SET signed by our keys, about its own sub only.
    keys = KeySet.import_key_set(client.get("/jwks.json").json)
    events = [jwt.decode(body, keys, algorithms=["RS256", "ES256"]).claims
              for body in receiver.tokens()]
    ended = [e for e in events if LINK_ENDED in e["events"]]
    assert len(ended) == 1
    assert ended[0]["aud"] == b.client_id
    assert ended[0]["sub_id"] == {"format": "iss_sub", "iss": ended[0]["iss"], "sub": b_sub}
    assert ended[0]["events"][LINK_ENDED]["category"] == "language"
    assert ended[0]["events"][LINK_ENDED]["source"] == "A社"
    assert a_sub not in json.dumps(events)
