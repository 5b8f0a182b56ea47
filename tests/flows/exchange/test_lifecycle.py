"""Links end without the resident too (idp.exchange.lifecycle): when the recipient's
data-use contract ends, and when a link reaches the expiry the resident chose. Either
way the link says why and the recipient is told once by a data-link-ended event."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.access import security_events
from idp.clients import service as clients
from idp.db import utcnow
from idp.exchange import contracts
from idp.exchange import lifecycle
from idp.exchange import links
from idp.exchange.models import DataLink
from idp.extensions import db
from idp.outbox.models import OutboxMessage
from tests import factories
from tests.flows.exchange.test_links_release import consent
from tests.helpers import data_links
from tests.helpers.oauth import userinfo

RECEIVER = "https://b.example.jp/events"


@pytest.fixture
def linked(client):
    """A resident whose language A社 contributed, linked to B社's service (which has an
    event receiver) for 90 days."""
    resident = factories.resident()
    setup = data_links.setup()
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    client_row = clients.editable_client(setup.rp.client_id)
    client_row.event_receiver_uri = RECEIVER
    db.session.commit()
    issued = consent(client, setup.rp, expiry="90d")
    return resident, setup, issued


def link_ended_events() -> list[OutboxMessage]:
    db.session.expire_all()
    return [m for m in db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.kind == security_events.KIND))
        if security_events.DATA_LINK_ENDED in str(m.payload)]


def the_link(resident_id) -> DataLink:
    db.session.expire_all()
    return db.session.scalars(select(DataLink).where(DataLink.resident_id == resident_id)).one()


def test_ending_the_recipients_contract_ends_its_links_and_tells_it(client, linked):
    """Test that the contract's end ends the link (contract_ended), tells the recipient
    once, and that the value is no longer released."""
    resident, setup, issued = linked
    assert "registered_data" in userinfo(client, issued["access_token"]).json
    contract, ended = lifecycle.end_contract(setup.recipient_contract, "breach", actor="admin")
    db.session.commit()
    assert ended == 1
    link = the_link(resident.id)
    assert link.end_reason == "contract_ended" and links.status(link) == "withdrawn"
    assert len(link_ended_events()) == 1
    assert "registered_data" not in userinfo(client, issued["access_token"]).json


def test_a_contract_that_still_has_a_twin_ends_nothing(client, linked):
    """Test that links stay when another contract in force still names the category."""
    resident, setup, _ = linked
    contracts.create(setup.recipient_company, ["language"], "別の目的",
                     valid_until=(utcnow() + dt.timedelta(days=30)).date())
    _, ended = lifecycle.end_contract(setup.recipient_contract)
    db.session.commit()
    assert ended == 0 and the_link(resident.id).end_reason is None
    assert link_ended_events() == []


def test_an_expired_link_is_reported_once_by_the_worker(client, linked):
    """Test that a link past its expiry is marked expired and its recipient told once;
    before the expiry nothing happens."""
    resident, _, _ = linked
    assert lifecycle.end_expired_links() == 0
    with freeze_time(utcnow() + dt.timedelta(days=91)):
        assert lifecycle.end_expired_links() == 1
        db.session.commit()
        assert lifecycle.end_expired_links() == 0
        link = the_link(resident.id)
        assert link.end_reason == "expired" and links.status(link) == "expired"
    assert len(link_ended_events()) == 1
