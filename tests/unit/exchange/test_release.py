"""idp.exchange.release: what may be released now, and its audit record."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time

from idp.audit.service import pending_events
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.consent import service as consent_service
from idp.db import utcnow
from idp.exchange import categories
from idp.exchange import contracts
from idp.exchange import links
from idp.exchange import release
from idp.extensions import db
from tests import factories
from tests.helpers import data_links

SCOPES = ["openid", "registered:language"]


@pytest.fixture
def linked(app):
    resident = factories.resident()
    setup = data_links.setup()
    client = db.session.get(Client, setup.rp.client_id)
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    consent = consent_service.grant(resident, client, SCOPES, SCOPES)
    (link,) = links.grant(resident.id, client, SCOPES, consent.scopes, "90d")
    return resident, setup, client, link


def test_the_claim_names_value_and_sources_only(linked):
    resident, _, client, link = linked
    released = release.registered_data(resident.id, client, SCOPES)
    assert released.claim == {"language": {"value": "vi", "sources": ["A社"]}}
    assert released.links == [link.id] and released.categories == ["language"]
    assert released.claim_names() == ["registered_data.language"]


def test_nothing_without_the_scope(linked):
    resident, _, client, _ = linked
    assert release.registered_data(resident.id, client, ["openid"]).claim == {}


def test_nothing_once_the_link_expired(linked):
    resident, _, client, _ = linked
    with freeze_time(utcnow() + dt.timedelta(days=91)):
        assert release.registered_data(resident.id, client, SCOPES).claim == {}


def test_nothing_once_the_recipients_contract_ended(linked):
    resident, setup, client, _ = linked
    contracts.end(setup.recipient_contract)
    assert release.registered_data(resident.id, client, SCOPES).claim == {}


def test_nothing_once_the_category_is_retired(linked):
    resident, _, client, _ = linked
    categories.get("language").retired_at = utcnow()
    db.session.flush()
    assert release.registered_data(resident.id, client, SCOPES).claim == {}


def test_nothing_from_a_source_without_a_link(linked):
    """A company that contributed after the consent is not released until linked."""
    resident, _, client, _ = linked
    other = data_links.setup_source("C社")
    data_links.contribute(resident.id, other.company_id, other.contract_id, "en",
                          record_id="c-1", collected_at=utcnow() + dt.timedelta(minutes=1))
    assert release.registered_data(resident.id, client, SCOPES).claim == {
        "language": {"value": "vi", "sources": ["A社"]}}


def test_audit_record(linked):
    resident, _, client, link = linked
    released = release.registered_data(resident.id, client, SCOPES)
    release.audit(released, resident.id, client, "userinfo")
    (event,) = [e for e in pending_events() if e.tag == AuditTag.RECORD_RELEASE]
    assert event.data["categories"] == ["language"] and event.data["links"] == [link.id]
    assert event.client_id == client.id and event.resident_id == resident.id
