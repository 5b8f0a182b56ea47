"""Links end without the resident too (idp.exchange.lifecycle): when the recipient's
data-use contract ends, when it runs out on its end date, and when a link reaches the
expiry the resident chose. Either way the link says why and the recipient is told once
by a data-link-ended event."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.access import security_events
from idp.audit.tags import AuditTag
from idp.clients import service as clients
from idp.db import utcnow
from idp.exchange import contracts
from idp.exchange import lifecycle
from idp.exchange import links
from idp.exchange.models import DataContract
from idp.exchange.models import DataLink
from idp.extensions import db
from idp.outbox.models import OutboxMessage
from tests import factories
from tests.helpers import data_links
from tests.helpers.accounts import tags
from tests.helpers.data_links import consent
from tests.helpers.oauth import EventReceiver
from tests.helpers.oauth import jwt_claims
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


def runs_out_in(contract_id: str, days: int) -> dt.date:
    """Shorten a contract: it now ends ``days`` from today; its last day."""
    contract = db.session.get(DataContract, contract_id)
    contract.valid_until = (utcnow() + dt.timedelta(days=days)).date()
    db.session.commit()
    return contract.valid_until


def day_after(last_day: dt.date) -> dt.datetime:
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0, 5), tzinfo=dt.UTC)


def link_card(page: str, link_id: int) -> str:
    start = page.rindex("<li", 0, page.index(f'id="data-link-{link_id}"'))
    card = page[start:]
    return card[:card.index("</li>")]


def test_a_contract_that_ran_out_ends_its_links_once(client, linked):
    """Test that on its last day a contract keeps its links; the day after, the links
    it alone allowed end (contract_expired, audited with the contract, the recipient
    told once), the contract is not marked ended, and /account/consents shows the link
    as ended by the contract instead of in use."""
    resident, setup, issued = linked
    last_day = runs_out_in(setup.recipient_contract, 10)
    with freeze_time(dt.datetime.combine(last_day, dt.time(23, 55), tzinfo=dt.UTC)):
        assert lifecycle.end_links_of_lapsed_contracts() == 0
    with freeze_time(day_after(last_day)):
        assert "registered_data" not in userinfo(client, issued["access_token"]).json
        assert lifecycle.end_links_of_lapsed_contracts() == 1
        db.session.commit()
        assert lifecycle.end_links_of_lapsed_contracts() == 0
        link = the_link(resident.id)
        assert link.end_reason == "contract_expired" and links.status(link) == "withdrawn"
        factories.Browser(client).login()
        card = link_card(client.get("/account/consents").text, link.id)
        with pytest.raises(contracts.ContractRefused, match="has expired"):
            contracts.require(setup.recipient_company, "language")
    assert "data-link-in_force" not in card and 'name="link_id"' not in card
    assert "データ利用契約が終了" in card
    (event,) = link_ended_events()
    members = event.payload["events"][security_events.DATA_LINK_ENDED]
    assert members["reason"] == "contract_expired" and members["category"] == "language"
    (audit,) = tags(AuditTag.DATA_LINK_WITHDRAW)
    assert audit.actor == "worker" and audit.data["reason"] == "contract_expired"
    assert audit.data["contract_id"] == setup.recipient_contract
    contract = db.session.get(DataContract, setup.recipient_contract)
    assert contract.ended_at is None


def test_a_lapsed_contract_with_a_successor_in_force_ends_nothing(client, linked):
    """Test that a link stays when another contract of the recipient in force still
    names the category, but ends when the only other one is not in force yet."""
    resident, setup, _ = linked
    last_day = runs_out_in(setup.recipient_contract, 10)
    later = contracts.create(setup.recipient_company, ["language"], "次年度の契約",
                             valid_from=last_day + dt.timedelta(days=5),
                             valid_until=last_day + dt.timedelta(days=400))
    db.session.commit()
    with freeze_time(day_after(last_day)):
        assert lifecycle.end_links_of_lapsed_contracts() == 1  # the gap: not in force yet
    assert the_link(resident.id).end_reason == "contract_expired"
    assert later.ended_at is None


def test_a_renewed_contract_keeps_the_links(client, linked):
    """Test that a contract in force naming the category keeps the links when the old
    one runs out, and that nothing is sent."""
    resident, setup, _ = linked
    last_day = runs_out_in(setup.recipient_contract, 10)
    contracts.create(setup.recipient_company, ["language"], "更新後の契約",
                     valid_until=last_day + dt.timedelta(days=365))
    db.session.commit()
    with freeze_time(day_after(last_day)):
        assert lifecycle.end_links_of_lapsed_contracts() == 0
    assert the_link(resident.id).withdrawn_at is None and link_ended_events() == []


def test_the_source_companys_lapsed_contract_leaves_the_recipients_links(client, linked):
    """Test that only the recipient's contracts count: A社's contribution contract
    running out ends none of B社's links (release goes by the recipient's contract)."""
    resident, setup, _ = linked
    last_day = runs_out_in(setup.source_contract, 10)
    with freeze_time(day_after(last_day)):
        assert lifecycle.end_links_of_lapsed_contracts() == 0
    assert the_link(resident.id).withdrawn_at is None


@pytest.mark.commits  # `idp worker --once` runs with its own app and connection
def test_the_worker_ends_them_and_pushes_the_event(client, cli):
    """Test that `idp worker --once` the day after the contract's end ends the link and
    delivers a signed data-link-ended SET (reason contract_expired) about B's own sub
    to B's receiver; a second run sends nothing more."""
    receiver = EventReceiver()
    try:
        resident = factories.resident()
        setup = data_links.setup(event_receiver_uri=receiver.uri)
        data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
        b_sub = jwt_claims(consent(client, setup.rp, expiry="90d")["id_token"])["sub"]
        last_day = runs_out_in(setup.recipient_contract, 10)
        with freeze_time(day_after(last_day), tick=True):
            for _ in range(2):
                result = cli("worker", "--once", "--json")
                assert result.exit_code == 0, result.output
        assert the_link(resident.id).end_reason == "contract_expired"
        (token,) = receiver.tokens()
        claims = jwt_claims(token)
        assert claims["aud"] == setup.rp.client_id and claims["sub_id"]["sub"] == b_sub
        event = claims["events"][security_events.DATA_LINK_ENDED]
        assert event["reason"] == "contract_expired" and event["source"] == "A社"
    finally:
        receiver.close()
