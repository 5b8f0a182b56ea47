"""idp.exchange.links: sources, grant with expiry, in force, withdraw, new sources."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time

from idp.audit.models import AuditEvent
from idp.audit.service import pending_events
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.consent import service as consent_service
from idp.db import utcnow
from idp.exchange import links
from idp.exchange.models import CollectionStop
from idp.extensions import db
from tests import factories
from tests.helpers import data_links

SCOPES = ["openid", "registered:language"]


@pytest.fixture
def world(app):
    resident = factories.resident()
    setup = data_links.setup()
    client = db.session.get(Client, setup.rp.client_id)
    return resident, setup, client


def audited(tag) -> list[AuditEvent]:
    """Events of this tag recorded in the test's transaction (chained at commit)."""
    return [event for event in pending_events() if event.tag == tag]


def consent_to(resident, client, scopes=SCOPES, granted=None, expiry=None):
    consent = consent_service.grant(resident, client, scopes, granted or scopes)
    return links.grant(resident.id, client, scopes, consent.scopes, expiry)


def test_sources_are_the_latest_live_value_per_company(world):
    resident, setup, _ = world
    now = utcnow()
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "ja",
                          record_id="old", collected_at=now - dt.timedelta(days=2))
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi",
                          record_id="new", collected_at=now - dt.timedelta(days=1))
    (source,) = links.sources(resident.id, "language")
    assert source.company.id == setup.source_company and source.value == "vi"


def test_expired_disputed_and_stopped_records_are_no_source(world):
    resident, setup, _ = world
    row = data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi",
                                expires_in=dt.timedelta(days=1))
    assert links.sources(resident.id, "language")
    with freeze_time(utcnow() + dt.timedelta(days=2)):
        assert links.sources(resident.id, "language") == []
    row.disputed_at = utcnow()
    db.session.flush()
    assert links.sources(resident.id, "language") == []
    row.disputed_at = None
    db.session.add(CollectionStop(resident_id=resident.id, company_id=setup.source_company))
    db.session.flush()
    assert links.sources(resident.id, "language") == []


@pytest.mark.parametrize(("choice", "days"), [("90d", 90), ("365d", 365), ("withdrawn", None),
                                              (None, 365)])
def test_grant_makes_a_link_per_source_with_the_chosen_expiry(world, choice, days):
    resident, setup, client = world
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    start = utcnow().replace(microsecond=0)
    with freeze_time(start):
        (link,) = consent_to(resident, client, expiry=choice)
    assert link.purpose == "多言語での観光案内" and link.granted_at == start
    if days is None:
        assert link.expires_at is None
    else:
        assert link.expires_at == start + dt.timedelta(days=days)
    (event,) = audited(AuditTag.DATA_LINK_GRANT)
    assert event.data["link"] == link.id and event.data["category"] == "language"


def test_an_unknown_expiry_is_refused(world):
    with pytest.raises(links.LinkError):
        links.expiry_of("forever", utcnow())


def test_consenting_again_renews_the_same_row(world):
    resident, setup, client = world
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    (first,) = consent_to(resident, client, expiry="90d")
    links.withdraw(resident.id, first.id)
    (again,) = consent_to(resident, client, expiry="withdrawn")
    assert again.id == first.id and again.withdrawn_at is None and again.expires_at is None


def test_unticking_the_category_ends_its_links(world):
    resident, setup, client = world
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    (link,) = consent_to(resident, client)
    assert consent_to(resident, client, granted=["openid"]) == []
    assert link.end_reason == "declined" and not link.in_force(utcnow())


def test_no_source_no_link(world):
    resident, _, client = world
    assert consent_to(resident, client) == []


def test_withdraw_narrows_only_with_the_last_link(world):
    resident, setup, client = world
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    other = data_links.setup_source("C社")
    data_links.contribute(resident.id, other.company_id, other.contract_id, "en",
                          record_id="c-1")
    first, second = consent_to(resident, client)
    assert links.withdraw(resident.id, first.id).narrowed is False
    assert "registered:language" in consent_service.find(resident.id, client.id).scopes
    assert links.withdraw(resident.id, second.id).narrowed is True
    assert "registered:language" not in consent_service.find(resident.id, client.id).scopes
    assert [e.data["reason"] for e in audited(AuditTag.CONSENT_CHANGE)
            if e.data.get("reason")] == ["data_link_withdrawn"]


@pytest.mark.parametrize("bad", [None, "1", 10**6, -1])
def test_withdraw_needs_a_link_in_force_of_the_resident(world, bad):
    resident, _, _ = world
    with pytest.raises(links.LinkError):
        links.withdraw(resident.id, bad)


def test_withdraw_refuses_another_residents_link(world):
    resident, setup, client = world
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    (link,) = consent_to(resident, client)
    other = factories.resident("taro@example.jp")
    with pytest.raises(links.LinkError):
        links.withdraw(other.id, link.id)


def test_new_sources(world):
    resident, setup, client = world
    assert links.new_sources(resident.id, client.id, SCOPES) == []
    consent_to(resident, client)  # nothing held yet: consented, no link
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    assert links.new_sources(resident.id, client.id, SCOPES) == ["language"]
    (link,) = consent_to(resident, client, expiry="90d")
    assert links.new_sources(resident.id, client.id, SCOPES) == []
    # Not asked about a category the request does not name.
    assert links.new_sources(resident.id, client.id, ["openid"]) == []
    with freeze_time(utcnow() + dt.timedelta(days=91)):
        assert links.new_sources(resident.id, client.id, SCOPES) == ["language"]
    links.withdraw(resident.id, link.id)
    # Withdrawn: the consent no longer covers the category (asked as new_scopes instead).
    assert links.new_sources(resident.id, client.id, SCOPES) == []


def test_status(world):
    resident, setup, client = world
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    (link,) = consent_to(resident, client, expiry="90d")
    assert links.status(link) == "in_force"
    assert links.status(link, utcnow() + dt.timedelta(days=91)) == "expired"
    links.withdraw(resident.id, link.id)
    assert links.status(link) == "withdrawn"


@pytest.mark.parametrize(("value", "shown"), [
    ("ja", "ja"), (["music", "food"], "music、food"), ({"members": 3, "children": 1},
                                                        "members: 3、children: 1"),
    (True, "true"), (1990, "1990")])
def test_display(value, shown):
    assert links.display(value) == shown
