"""idp.exchange.residents: what is held about a resident, and their control over it."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.access import security_events
from idp.access.subjects import existing_subject
from idp.audit.tags import AuditTag
from idp.clients import service as clients
from idp.db import utcnow
from idp.exchange import contracts
from idp.exchange import residents
from idp.exchange.models import CollectionStop
from idp.exchange.models import DataLink
from idp.exchange.models import RegisteredRecord
from idp.extensions import db
from idp.outbox.models import OutboxMessage
from idp.privacy.export import Names
from tests import factories
from tests.helpers.accounts import tags as stored_tags
from tests.helpers.exchange_residents import contribute
from tests.helpers.exchange_residents import contributor


def tags(*wanted):
    """The audit events, once the change commits (they are chained at the commit)."""
    db.session.commit()
    return stored_tags(*wanted)


@pytest.fixture
def hanako(app):
    return factories.resident()


@pytest.fixture
def jiro(app):
    return factories.resident("jiro@example.jp")


@pytest.fixture
def a(app):
    return contributor("A社")


def test_held_groups_records_by_source_company_with_provenance(hanako, jiro, a):
    """Test that held() lists the resident's records by company, with service, purpose
    and times, and nothing of another resident."""
    b = contributor("B社")
    mine = contribute(a, hanako.id, "language", "ja")
    contribute(b, hanako.id, "occupation", "student")
    contribute(a, jiro.id, "language", "en")
    sources = residents.held(hanako.id)
    assert [s.company.name for s in sources] == ["A社", "B社"]
    (item,) = sources[0].items
    assert item.record.id == mine.id and item.record.value == "ja"
    assert item.category.label_ja == "使用言語"
    assert item.service == "XXXサービス"
    assert item.purpose == "会員サービスの改善"
    assert item.record.collected_at < item.record.received_at
    assert not item.disputed and not sources[0].stopped


def test_held_lists_possible_contributors_and_stopped_companies(hanako, a):
    """Test that a company with a contract in force is listed with no items, so
    collection can be stopped before anything arrives; one without a contract is not."""
    factories.company("契約なし社")
    (source,) = residents.held(hanako.id)
    assert source.company.id == a.company_id and source.items == []
    contracts.end(a.contract_id)
    assert residents.held(hanako.id) == []
    residents_stop = CollectionStop(resident_id=hanako.id, company_id=a.company_id)
    db.session.add(residents_stop)
    assert [s.company.id for s in residents.held(hanako.id)] == [a.company_id]


def test_find_refuses_another_residents_record_and_bad_ids(hanako, jiro, a):
    theirs = contribute(a, jiro.id, "language", "en")
    assert residents.find(jiro.id, theirs.id) is theirs
    assert residents.find(jiro.id, str(theirs.id)) is theirs
    for bad in (theirs.id, str(theirs.id), "x", "", "-1", None, True, "9" * 40, 1.5):
        assert residents.find(hanako.id, bad) is None


def test_delete_removes_the_record_and_audits_without_the_value(hanako, a):
    row = contribute(a, hanako.id, "language", "ja")
    residents.delete(hanako.id, row.id)
    assert db.session.scalars(select(RegisteredRecord)).all() == []
    (event,) = tags(AuditTag.RESIDENT_DATA_DELETE)
    assert (event.resident_id, event.company_id, event.client_id) == (
        hanako.id, a.company_id, a.client_id)
    assert event.data == {"category": "language", "count": 1}


def test_delete_of_another_residents_record_is_not_found(hanako, jiro, a):
    theirs = contribute(a, jiro.id, "language", "en")
    with pytest.raises(residents.ResidentDataError) as error:
        residents.delete(hanako.id, theirs.id)
    assert error.value.reason == "not_found"
    assert db.session.get(RegisteredRecord, theirs.id) is not None
    assert tags(AuditTag.RESIDENT_DATA_DELETE) == []


@freeze_time("2026-12-03 09:00:00")
def test_dispute_flags_the_record_keeps_it_and_is_not_releasable(hanako, a):
    row = contribute(a, hanako.id, "occupation", "student")
    assert residents.releasable(row)
    disputed, _told = residents.dispute(hanako.id, row.id, "  もう学生ではありません\r\n会社員です ")
    assert disputed.id == row.id
    assert disputed.disputed_at == utcnow()
    assert disputed.dispute_note == "もう学生ではありません\n会社員です"
    assert disputed.value == "student"  # still held, flagged
    assert not residents.releasable(disputed)
    (event,) = tags(AuditTag.RESIDENT_DATA_DISPUTE)
    assert event.company_id == a.company_id and event.data["category"] == "occupation"
    assert event.data["record_id"] == row.record_id
    assert "student" not in str(event.data) and "会社員" not in str(event.data)


def test_dispute_again_replaces_the_note(hanako, a):
    row = contribute(a, hanako.id, "language", "ja")
    residents.dispute(hanako.id, row.id, "first")
    with freeze_time(utcnow() + dt.timedelta(hours=1)):
        residents.dispute(hanako.id, row.id, "second")
    assert row.dispute_note == "second"
    assert len(tags(AuditTag.RESIDENT_DATA_DISPUTE)) == 2


@pytest.mark.parametrize("note", ["", "   ", "x" * 501, "bad\x00char", None, 5])
def test_dispute_refuses_a_bad_note(hanako, a, note):
    row = contribute(a, hanako.id, "language", "ja")
    with pytest.raises(residents.ResidentDataError) as error:
        residents.dispute(hanako.id, row.id, note)
    assert error.value.reason == "bad_note"
    assert row.disputed_at is None


def test_dispute_accepts_exactly_500_characters(hanako, a):
    row = contribute(a, hanako.id, "language", "ja")
    residents.dispute(hanako.id, row.id, "あ" * 500)
    assert len(row.dispute_note) == 500


def test_dispute_of_another_residents_record_is_not_found(hanako, jiro, a):
    theirs = contribute(a, jiro.id, "language", "en")
    with pytest.raises(residents.ResidentDataError) as error:
        residents.dispute(hanako.id, theirs.id, "wrong")
    assert error.value.reason == "not_found"
    assert theirs.disputed_at is None


def test_stop_without_deletion_keeps_records_and_refuses_from_now_on(hanako, a):
    row = contribute(a, hanako.id, "language", "ja")
    assert not residents.collection_stopped(hanako.id, a.company_id)
    stop, deleted = residents.stop(hanako.id, a.company_id)
    assert deleted == 0 and stop.resident_id == hanako.id
    assert residents.collection_stopped(hanako.id, a.company_id)
    assert db.session.get(RegisteredRecord, row.id) is not None
    (event,) = tags(AuditTag.COLLECTION_STOP)
    assert event.company_id == a.company_id
    assert event.data == {"records_deleted": 0, "already_stopped": False}


def test_stop_with_deletion_deletes_only_that_companys_records_of_the_resident(hanako, jiro, a):
    b = contributor("B社")
    contribute(a, hanako.id, "language", "ja")
    contribute(a, hanako.id, "occupation", "student")
    kept_b = contribute(b, hanako.id, "language", "ja")
    kept_jiro = contribute(a, jiro.id, "language", "en")
    _stop, deleted = residents.stop(hanako.id, a.company_id, delete_sent=True)
    assert deleted == 2
    left = {r.id for r in db.session.scalars(select(RegisteredRecord))}
    assert left == {kept_b.id, kept_jiro.id}
    assert tags(AuditTag.COLLECTION_STOP)[0].data["records_deleted"] == 2


def test_stop_twice_keeps_the_first_stop(hanako, a):
    first, _ = residents.stop(hanako.id, a.company_id)
    second, _ = residents.stop(hanako.id, a.company_id)
    assert first.id == second.id
    assert len(tags(AuditTag.COLLECTION_STOP)) == 1
    contribute(a, hanako.id, "language", "ja", audited=False)
    _, deleted = residents.stop(hanako.id, a.company_id, delete_sent=True)
    assert deleted == 1
    assert tags(AuditTag.COLLECTION_STOP)[-1].data["already_stopped"] is True


def test_stop_refuses_unknown_and_unrelated_companies(hanako, a):
    stranger = factories.company("無関係社")
    for company_id in ("nope", stranger, None, 5):
        with pytest.raises(residents.ResidentDataError):
            residents.stop(hanako.id, company_id)
    assert db.session.scalars(select(CollectionStop)).all() == []


def test_stop_is_allowed_for_a_company_that_holds_data_after_its_contract_ended(hanako, a):
    """Test that a suspended company without a contract is still stoppable while it
    holds records about the resident (and what it sent can be deleted)."""
    contribute(a, hanako.id, "language", "ja")
    contracts.end(a.contract_id)
    clients.suspend_company(a.company_id)
    _stop, deleted = residents.stop(hanako.id, a.company_id, delete_sent=True)
    assert deleted == 1
    assert residents.collection_stopped(hanako.id, a.company_id)


@freeze_time("2026-12-03 09:00:00")
def test_resume_removes_the_stop_and_audits(hanako, a):
    residents.stop(hanako.id, a.company_id)
    with freeze_time("2026-12-04 09:00:00"):
        residents.resume(hanako.id, a.company_id)
    assert not residents.collection_stopped(hanako.id, a.company_id)
    (event,) = tags(AuditTag.COLLECTION_RESUME)
    assert event.data == {"stopped_for_seconds": 86400}


def test_resume_without_a_stop_is_refused(hanako, jiro, a):
    residents.stop(jiro.id, a.company_id)
    for company_id in (a.company_id, "nope", None):
        with pytest.raises(residents.ResidentDataError) as error:
            residents.resume(hanako.id, company_id)
        assert error.value.reason == "not_stopped"
    assert residents.collection_stopped(jiro.id, a.company_id)


def _link(resident_id: str, source, rp) -> DataLink:
    link = DataLink(resident_id=resident_id, client_id=rp.client_id,
                    source_company_id=source.company_id, category="language",
                    purpose="観光案内", granted_at=utcnow(), expires_at=None)
    db.session.add(link)
    db.session.flush()
    return link


def test_export_has_records_with_provenance_links_and_stops(hanako, jiro, a):
    row = contribute(a, hanako.id, "language", "ja")
    contribute(a, jiro.id, "language", "en")
    residents.dispute(hanako.id, row.id, "違います")
    b = contributor("B社")
    residents.stop(hanako.id, b.company_id)
    recipient = factories.rp(factories.company("C社"))
    _link(hanako.id, a, recipient)
    _link(jiro.id, a, recipient)
    part = residents.export_resident(hanako.id, Names())
    (record,) = part["registered_data"]
    assert record["value"] == "ja" and record["company"] == "A社"
    assert record["contributing_service"]["service"] == "XXXサービス"
    assert record["record_id"] == row.record_id and record["dispute_note"] == "違います"
    assert {"collected_at", "received_at", "expires_at", "disputed_at"} <= record.keys()
    (link,) = part["data_links"]
    assert link["source_company"] == "A社" and link["recipient"]["company"] == "C社"
    assert link["purpose"] == "観光案内"
    (stop,) = part["collection_stops"]
    assert stop["company"] == "B社"


def test_forget_deletes_every_exchange_row_of_the_resident_only(hanako, jiro, a):
    contribute(a, hanako.id, "language", "ja")
    contribute(a, hanako.id, "occupation", "student")
    theirs = contribute(a, jiro.id, "language", "en")
    residents.stop(hanako.id, a.company_id)
    recipient = factories.rp(factories.company("C社"))
    _link(hanako.id, a, recipient)
    their_link = _link(jiro.id, a, recipient)
    counts = residents.forget_resident(hanako.id)
    assert counts == {"registered_records_deleted": 2, "data_links_deleted": 1,
                      "collection_stops_deleted": 1}
    assert [r.id for r in db.session.scalars(select(RegisteredRecord))] == [theirs.id]
    assert [r.id for r in db.session.scalars(select(DataLink))] == [their_link.id]
    assert db.session.scalars(select(CollectionStop)).all() == []


def security_events_queued() -> list[OutboxMessage]:
    db.session.commit()
    return list(db.session.scalars(select(OutboxMessage)
                                   .where(OutboxMessage.kind == "security_event")
                                   .order_by(OutboxMessage.id)))


def test_dispute_tells_every_client_of_the_contributor_with_a_receiver(hanako, jiro):
    """Test that a dispute queues a registered-data-disputed SET for each active client
    of the contributing company that has a receiver, about the company's pairwise sub,
    with the category, its record id and the note, and nothing naming the resident."""
    a = contributor("A社", event_receiver_uri="https://a.example.jp/events")
    second = factories.rp(a.company_id, event_receiver_uri="https://a.example.jp/events2")
    factories.rp(a.company_id)  # no receiver: not told
    other = factories.rp(factories.company("B社"), event_receiver_uri="https://b.example.jp/e")
    row = contribute(a, hanako.id, "occupation", "student", record_id="A-42")
    _row, told = residents.dispute(hanako.id, row.id, "会社員です")
    assert told == 2
    messages = security_events_queued()
    assert sorted(m.payload["aud"] for m in messages) == sorted([a.client_id, second.client_id])
    assert other.client_id not in {m.payload["aud"] for m in messages}
    for message in messages:
        (event,) = message.payload["events"].values()
        assert list(message.payload["events"]) == [security_events.REGISTERED_DATA_DISPUTED]
        assert event["category"] == "occupation" and event["record_id"] == "A-42"
        assert event["note"] == "会社員です" and event["reason"] == "registered_data_disputed"
        assert event["disputed_at"] == int(row.disputed_at.timestamp())
        assert message.payload["sub_id"]["sub"] == existing_subject(hanako.id, a.company_id)
        assert hanako.id not in json.dumps(message.payload)
        assert "student" not in json.dumps(message.payload)
    assert tags(AuditTag.RESIDENT_DATA_DISPUTE)[0].data["security_events"] == 2


def test_dispute_without_a_receiver_still_flags(hanako, a):
    row = contribute(a, hanako.id, "language", "ja")
    _row, told = residents.dispute(hanako.id, row.id, "違う")
    assert told == 0 and row.disputed_at is not None
    assert security_events_queued() == []


def test_a_note_holding_the_residents_id_is_sent_without_the_note(hanako):
    a = contributor("A社", event_receiver_uri="https://a.example.jp/events")
    row = contribute(a, hanako.id, "language", "ja")
    residents.dispute(hanako.id, row.id, f"my id is {hanako.id}")
    (message,) = security_events_queued()
    (event,) = message.payload["events"].values()
    assert "note" not in event and hanako.id not in json.dumps(message.payload)
    assert row.dispute_note == f"my id is {hanako.id}"
