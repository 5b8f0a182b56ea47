"""/account/consents and data links: each link shown (source → recipient, item,
purpose, expiry) with its own withdraw form; withdrawing one ends it alone."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.audit.tags import AuditTag
from idp.consent.models import Consent
from idp.db import utcnow
from idp.exchange import contracts
from idp.exchange.models import DataLink
from idp.extensions import db
from tests import factories
from tests.helpers import data_links
from tests.helpers.accounts import post_form
from tests.helpers.accounts import tags
from tests.helpers.data_links import SCOPE
from tests.helpers.data_links import consent
from tests.helpers.oauth import introspect
from tests.helpers.oauth import userinfo


@pytest.fixture
def two_sources(client):
    """A and C contribute language; B's service received it through two links."""
    resident = factories.resident()
    setup = data_links.setup()
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    c = factories.company("C社")
    contract = contracts.create(c, ["language"], "予約", valid_until=(
        utcnow() + dt.timedelta(days=30)).date())
    db.session.commit()
    data_links.contribute(resident.id, c, contract.id, "en", record_id="c-1",
                          collected_at=utcnow() - dt.timedelta(days=1))
    body = consent(client, setup.rp, expiry="90d")
    return resident, setup, c, body


def link_from(resident_id, company_id) -> DataLink:
    db.session.expire_all()
    return db.session.scalar(select(DataLink).where(DataLink.resident_id == resident_id,
                                                    DataLink.source_company_id == company_id))


def test_each_link_is_listed_with_its_own_form(client, two_sources):
    """Test that both links show route, item, purpose and expiry, each with a CSRF form."""
    resident, setup, c, _ = two_sources
    page = client.get("/account/consents")
    assert page.status_code == 200
    a_link = link_from(resident.id, setup.source_company)
    card = page.text[page.text.index(f'id="data-link-{a_link.id}"'):]
    card = card[:card.index("</li>")]
    assert "A社 → XXXサービス" in card
    assert "使用言語" in card and "多言語での観光案内" in card
    assert a_link.expires_at.isoformat() in card
    assert f'name="link_id" value="{a_link.id}"' in card and 'name="csrf_token"' in card
    assert f'id="data-link-{link_from(resident.id, c).id}"' in page.text


def test_withdrawing_one_link_keeps_the_other(client, two_sources):
    """Test that withdrawing A's link stops A's value; C's still flows; audited."""
    resident, setup, c, body = two_sources
    a_link = link_from(resident.id, setup.source_company)
    response = post_form(client, "/account/consents", {"link_id": str(a_link.id), "confirm": "yes"})
    assert response.status_code == 303
    assert link_from(resident.id, setup.source_company).end_reason == "withdrawn"
    assert link_from(resident.id, c).withdrawn_at is None
    info = userinfo(client, body["access_token"]).json
    assert info["registered_data"] == {"language": {"value": "en", "sources": ["C社"]}}
    (event,) = tags(AuditTag.DATA_LINK_WITHDRAW)
    assert event.data["link"] == a_link.id and event.data["reason"] == "withdrawn"
    assert "data-link-withdrawn" in client.get("/account/consents").text


def test_withdrawing_the_last_link_narrows_the_consent(client, two_sources):
    """Test that with no link of the category left, registered:language leaves the consent:
    B's token stops covering it (introspection shows it narrowed) and UserInfo lacks it."""
    resident, setup, c, body = two_sources
    for company in (setup.source_company, c):
        link = link_from(resident.id, company)
        assert post_form(client, "/account/consents",
                         {"link_id": str(link.id), "confirm": "yes"}).status_code == 303
    db.session.expire_all()
    row = db.session.scalar(select(Consent).where(Consent.client_id == setup.rp.client_id))
    assert "registered:language" not in row.scopes and "name" in row.scopes
    scope = introspect(client, setup.rp, body["access_token"]).json["scope"].split()
    assert "registered:language" not in scope and "name" in scope
    info = userinfo(client, body["access_token"])
    assert info.status_code == 200 and "registered_data" not in info.json
    # B asks again the next time it asks for the category.
    again = factories.Browser(client).authorize(setup.rp, scope=SCOPE, prompt="none")
    assert factories.query(again.headers["Location"])["error"] == "consent_required"


@pytest.mark.parametrize("raw", ["", "abc", "999999", "-1", "1" * 20])
def test_a_bad_link_id_changes_nothing(client, two_sources, raw):
    """Test that an unknown or malformed link id answers 400 and ends nothing."""
    resident, setup, c, _ = two_sources
    response = post_form(client, "/account/consents", {"link_id": raw, "confirm": "yes"})
    assert response.status_code == 400
    assert tags(AuditTag.DATA_LINK_WITHDRAW) == []


def test_another_residents_link_cannot_be_withdrawn(app, client, two_sources):
    """Test that a resident cannot end someone else's link by its id."""
    resident, setup, c, _ = two_sources
    a_link = link_from(resident.id, setup.source_company)
    factories.resident("taro@example.jp")
    browser = app.test_client()
    factories.Browser(browser).login("taro@example.jp")
    # Taro has no consents, so no form on that page: a CSRF token from his profile page.
    response = post_form(browser, "/account/profile", {"link_id": str(a_link.id)},
                         action="/account/consents")
    assert response.status_code == 400
    assert link_from(resident.id, setup.source_company).withdrawn_at is None


def test_a_withdraw_without_csrf_is_refused(client, two_sources):
    resident, setup, c, _ = two_sources
    a_link = link_from(resident.id, setup.source_company)
    response = client.post("/account/consents", data={"link_id": str(a_link.id)})
    assert response.status_code == 400
    assert link_from(resident.id, setup.source_company).withdrawn_at is None


def test_expired_links_are_shown_as_expired(client, two_sources):
    resident, setup, c, _ = two_sources
    with freeze_time(utcnow() + dt.timedelta(days=91)):
        factories.Browser(client).login()
        page = client.get("/account/consents")
        a_link = link_from(resident.id, setup.source_company)
        start = page.text.rindex("<li", 0, page.text.index(f'id="data-link-{a_link.id}"'))
        card = page.text[start:]
        card = card[:card.index("</li>")]
        assert "data-link-expired" in card and 'name="link_id"' not in card


def test_the_recipient_is_told_when_a_link_ends(client):
    """Test that withdrawing a link pushes B's receiver a signed data-link-ended SET about
    B's own sub, naming the category and the source by name, and nothing of A's ids."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    from idp.access import security_events
    from idp.access.subjects import subject_for
    from tests.helpers.oauth import EventReceiver
    from tests.helpers.oauth import jwt_claims

    receiver = EventReceiver()
    try:
        resident = factories.resident()
        setup = data_links.setup(event_receiver_uri=receiver.uri)
        data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
        body = consent(client, setup.rp)
        b_sub = jwt_claims(body["id_token"])["sub"]
        a_sub = subject_for(resident.id, setup.source_company)
        db.session.commit()
        link = link_from(resident.id, setup.source_company)
        assert post_form(client, "/account/consents",
                         {"link_id": str(link.id), "confirm": "yes"}).status_code == 303
        (token,) = receiver.tokens()
        keys = KeySet.import_key_set(client.get("/jwks.json").json)
        claims = jwt.decode(token, keys, algorithms=["RS256", "ES256"]).claims
        assert claims["aud"] == setup.rp.client_id and claims["sub_id"]["sub"] == b_sub
        event = claims["events"][security_events.DATA_LINK_ENDED]
        assert event["category"] == "language" and event["source"] == "A社"
        assert event["reason"] == "data_link_withdrawn"
        for secret in (a_sub, resident.id, setup.source_company, setup.source_contract):
            assert secret not in token and secret not in str(claims)
    finally:
        receiver.close()
