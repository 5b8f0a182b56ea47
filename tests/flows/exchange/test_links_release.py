"""Registered data released per data link (issue 14, item 5): company A contributes,
company B asks for ``registered:language``, the resident sees A named as the source
with the value and consents, B receives the value (never A's identifiers), and
withdrawal, expiry, an ended contract or a stopped collection stop the release."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.access.subjects import subject_for
from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.consent.models import Consent
from idp.db import utcnow
from idp.exchange import contracts
from idp.exchange import links
from idp.exchange.models import CollectionStop
from idp.exchange.models import DataLink
from idp.extensions import db
from tests import factories
from tests.helpers import data_links
from tests.helpers.data_links import SCOPE
from tests.helpers.data_links import consent
from tests.helpers.data_links import consent_page
from tests.helpers.data_links import decide
from tests.helpers.data_links import tokens
from tests.helpers.oauth import introspect
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import refresh
from tests.helpers.oauth import userinfo


@pytest.fixture
def exchange(client):
    resident = factories.resident()
    setup = data_links.setup()
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    return resident, setup


def links_of(resident_id) -> list[DataLink]:
    db.session.expire_all()
    return list(db.session.scalars(select(DataLink).where(DataLink.resident_id == resident_id)))


def releases() -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.tag == AuditTag.RECORD_RELEASE).order_by(AuditEvent.id)))


def test_the_consent_screen_names_the_source_and_the_value(client, exchange):
    """Test that item 5 shows the category, A社 as its source with the value, an
    untickable-per-category box and the expiry select."""
    _, setup = exchange
    path, _ = consent_page(client, setup.rp)
    page = client.get(path)
    assert page.status_code == 200
    text = page.text
    assert 'name="scope" value="registered:language"' in text
    assert "使用言語" in text
    assert "A社から：vi" in text or "A社: vi" in text
    assert "会員企業から収集して保有する登録データ" in text
    assert 'name="link_expiry"' in text
    for value in ("90d", "365d", "withdrawn"):
        assert f'value="{value}"' in text
    assert 'name="decision" value="allow"' in text


def test_a_category_with_no_data_says_so(client):
    """Test that a category nothing is held about yet says so on the consent screen."""
    factories.resident()
    setup = data_links.setup()
    path, _ = consent_page(client, setup.rp)
    text = client.get(path).text
    assert "まだ保有していません" in text or "No data of this kind" in text


def test_consent_links_and_userinfo_releases_the_value_without_the_sources_sub(client,
                                                                              exchange):
    """Test that B's UserInfo carries language from A by name, and none of A's identifiers."""
    resident, setup = exchange
    body = consent(client, setup.rp)
    (link,) = links_of(resident.id)
    assert link.client_id == setup.rp.client_id and link.source_company_id == setup.source_company
    assert link.purpose == "多言語での観光案内"
    assert link.expires_at is not None
    info = userinfo(client, body["access_token"])
    assert info.status_code == 200
    assert info.json["registered_data"] == {"language": {"value": "vi", "sources": ["A社"]}}
    raw = info.get_data(as_text=True)
    a_sub = subject_for(resident.id, setup.source_company)
    db.session.rollback()
    for secret in (a_sub, "r-1", "mc_contributor_client", setup.source_company,
                   setup.source_contract):
        assert secret not in raw
    # Released once per token and set: audited with categories and link ids.
    userinfo(client, body["access_token"])
    (event,) = releases()
    assert event.data["categories"] == ["language"] and event.data["links"] == [link.id]
    assert event.client_id == setup.rp.client_id


def test_id_token_carries_it_only_when_asked(client, exchange):
    """Test that the ID token has registered_data only with claims={"id_token":{...}}."""
    resident, setup = exchange
    body = consent(client, setup.rp)
    assert "registered_data" not in jwt_claims(body["id_token"])
    body = tokens(client, setup.rp,
                  claims=json.dumps({"id_token": {"registered_data": None}}))
    assert jwt_claims(body["id_token"])["registered_data"] == {
        "language": {"value": "vi", "sources": ["A社"]}}


def test_a_claims_request_alone_asks_for_no_category(client, exchange):
    """Test that the claims parameter only places registered_data: without the
    registered:<key> scope the screen offers no category, no link is made and neither
    the ID token nor UserInfo carries the claim (docs/data-exchange.md, Receiving)."""
    resident, setup = exchange
    scope = "openid name offline_access"
    asked = json.dumps({"id_token": {"registered_data": None},
                        "userinfo": {"registered_data": None}})
    path, verifier = consent_page(client, setup.rp, scope, claims=asked)
    assert 'value="registered:language"' not in client.get(path).text
    body = decide(client, setup.rp, path, verifier, scope.split(), None)
    assert links_of(resident.id) == []
    assert "registered_data" not in jwt_claims(body["id_token"])
    assert "registered_data" not in userinfo(client, body["access_token"]).json


def test_a_malformed_registered_data_request_is_refused(client, exchange):
    """Test that claims.id_token.registered_data must be null or an object."""
    _, setup = exchange
    response = factories.Browser(client).authorize(
        setup.rp, scope=SCOPE, claims=json.dumps({"id_token": {"registered_data": 3}}))
    assert factories.query(response.headers["Location"])["error"] == "invalid_request"


def test_unticked_category_gets_no_link_and_no_value(client, exchange):
    """Test that a resident who unticks the category gives no link and B gets nothing."""
    resident, setup = exchange
    body = consent(client, setup.rp, scopes=["openid", "name", "offline_access"])
    assert links_of(resident.id) == []
    assert "registered_data" not in userinfo(client, body["access_token"]).json


# A token that lives past the link, so the link's expiry alone must stop the release.
@pytest.mark.parametrize("settings_overrides", [{"access_token_ttl": 200 * 86400}])
def test_the_expiry_chosen_applies(client, exchange):
    """Test that a 3-month link releases until it expires and not a moment after, while
    the token and the consent are still in force; the next authorization asks again."""
    resident, setup = exchange
    start = utcnow().replace(microsecond=0)
    with freeze_time(start) as clock:
        body = consent(client, setup.rp, expiry="90d")
        (link,) = links_of(resident.id)
        assert link.expires_at.replace(tzinfo=None) == (
            start + dt.timedelta(days=90)).replace(tzinfo=None)
        clock.tick(dt.timedelta(days=90) - dt.timedelta(seconds=1))
        assert "registered_data" in userinfo(client, body["access_token"]).json
        clock.tick(dt.timedelta(seconds=2))
        info = userinfo(client, body["access_token"])
        assert info.status_code == 200 and "registered_data" not in info.json
        assert "name" in info.json
        # The next authorization asks again (its session has long expired by now).
        assert links.new_sources(resident.id, setup.rp.client_id, SCOPE.split()) == [
            "language"]


def test_until_withdrawn_has_no_expiry(client, exchange):
    resident, setup = exchange
    consent(client, setup.rp, expiry="withdrawn")
    (link,) = links_of(resident.id)
    assert link.expires_at is None


def test_an_unknown_expiry_is_a_bad_request(client, exchange):
    """Test that link_expiry outside the choices answers 400 with the page again."""
    _, setup = exchange
    path, _ = consent_page(client, setup.rp)
    page = client.get(path)
    response = client.post(path, data={"csrf_token": factories.csrf(page.text),
                                       "decision": "allow", "scope": "openid",
                                       "link_expiry": "forever"})
    assert response.status_code == 400


def test_an_ended_contract_stops_release(client, exchange):
    """Test that B's contract ending stops the release at once, link or not."""
    resident, setup = exchange
    body = consent(client, setup.rp)
    contracts.end(setup.recipient_contract)
    db.session.commit()
    info = userinfo(client, body["access_token"])
    assert info.status_code == 200 and "registered_data" not in info.json


@pytest.mark.parametrize(("successor_from", "why"), [
    (None, "the data-use contract for 'language' has expired"),
    (5, "the data-use contract for 'language' is not in force yet"),
])
def test_a_contract_that_ran_out_stops_release_and_says_why(client, exchange,
                                                             successor_from, why):
    """Test that B's contract running out (no successor, or one not in force yet) stops
    the release the next morning under a token of the evening before, and that B's
    refresh is refused with invalid_scope saying why, audited as a contract refusal."""
    resident, setup = exchange
    evening = data_links.runs_out_tomorrow(setup.recipient_contract, successor_from)
    with freeze_time(evening) as clock:
        body = consent(client, setup.rp)
        assert "registered_data" in userinfo(client, body["access_token"]).json
        clock.move_to(evening + dt.timedelta(minutes=15))
        info = userinfo(client, body["access_token"])
        assert info.status_code == 200 and "registered_data" not in info.json
        answer = refresh(client, setup.rp, body["refresh_token"])
    assert answer.status_code == 400 and answer.json["error"] == "invalid_scope"
    assert answer.json["error_description"] == f"registered:language: {why}"
    refusals = list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.tag == str(AuditTag.DATA_CONTRACT_REFUSED))))
    assert [(e.data["use"], e.data["scope"], e.data["reason"]) for e in refusals] == [
        ("token", "registered:language", why)]
    assert refusals[0].company_id == setup.recipient_company


def test_a_stopped_collection_stops_release(client, exchange):
    """Test that the resident stopping collection from A stops A's values reaching B."""
    resident, setup = exchange
    body = consent(client, setup.rp)
    db.session.add(CollectionStop(resident_id=resident.id, company_id=setup.source_company))
    db.session.commit()
    assert "registered_data" not in userinfo(client, body["access_token"]).json


def test_an_expired_record_is_not_released(client, exchange):
    resident, setup = exchange
    body = consent(client, setup.rp)
    with freeze_time(utcnow() + dt.timedelta(days=366)):
        # The link (1 year) and the record (1 year) have both run out.
        assert "registered_data" not in userinfo(client, body["access_token"]).json


def test_the_latest_value_among_linked_sources(client, exchange):
    """Test that two sources are both named and the newest value wins."""
    resident, setup = exchange
    c = factories.company("C社")
    contract = contracts.create(c, ["language"], "予約", valid_until=(
        utcnow() + dt.timedelta(days=30)).date())
    db.session.commit()
    data_links.contribute(resident.id, c, contract.id, "en", record_id="c-1",
                          collected_at=utcnow() + dt.timedelta(seconds=5))
    body = consent(client, setup.rp)
    assert len(links_of(resident.id)) == 2
    assert userinfo(client, body["access_token"]).json["registered_data"] == {
        "language": {"value": "en", "sources": ["C社", "A社"]}}


def test_a_new_source_asks_again(client, exchange):
    """Test that a company contributing after the consent brings the screen back
    (consent_required under prompt=none), and its link is made on consent."""
    resident, setup = exchange
    consent(client, setup.rp)
    # Same sources: no question.
    again = factories.Browser(client).authorize(setup.rp, scope=SCOPE, prompt="none")
    assert "code" in factories.query(again.headers["Location"])
    c = factories.company("C社")
    contract = contracts.create(c, ["language"], "予約", valid_until=(
        utcnow() + dt.timedelta(days=30)).date())
    db.session.commit()
    data_links.contribute(resident.id, c, contract.id, "en", record_id="c-1")
    silent = factories.Browser(client).authorize(setup.rp, scope=SCOPE, prompt="none")
    assert factories.query(silent.headers["Location"])["error"] == "consent_required"
    path, verifier = consent_page(client, setup.rp)
    assert "C社" in client.get(path).text
    decide(client, setup.rp, path, verifier, SCOPE.split(), "90d")
    assert {link.source_company_id for link in links_of(resident.id)} == {
        setup.source_company, c}


def test_withdrawing_the_whole_consent_ends_the_links(client, exchange):
    from tests.helpers.accounts import post_form

    resident, setup = exchange
    consent(client, setup.rp)
    response = post_form(client, "/account/consents", {"client_id": setup.rp.client_id, "confirm": "yes"})
    assert response.status_code == 303
    (link,) = links_of(resident.id)
    assert link.withdrawn_at is not None and link.end_reason == "consent_withdrawn"


def test_introspection_narrows_after_the_last_link_is_withdrawn(client, exchange):
    resident, setup = exchange
    body = consent(client, setup.rp)
    (link,) = links_of(resident.id)
    links.withdraw(resident.id, link.id)
    db.session.commit()
    consent_row = db.session.scalar(select(Consent).where(
        Consent.client_id == setup.rp.client_id))
    assert "registered:language" not in consent_row.scopes
    assert "registered:language" not in introspect(
        client, setup.rp, body["access_token"]).json["scope"]
    assert "registered_data" not in userinfo(client, body["access_token"]).json
