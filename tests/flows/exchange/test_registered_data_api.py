"""POST/DELETE /api/registered-data: contributions by a member company's backend.

All or nothing, idempotent by record_id, gated by scope and contract, addressed by the
contributor's own pairwise sub, refused for collection stops; errors in the
touch-event API's shape."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.exchange import contracts
from idp.exchange import records
from idp.exchange.models import CollectionStop
from idp.exchange.models import RegisteredRecord
from idp.extensions import db
from tests import factories
from tests.helpers import data_links
from tests.helpers import exchange_supply as supply


@pytest.fixture
def company_a(app):
    return supply.contributor("A社", ("language", "household"))


@pytest.fixture
def hanako(company_a):
    return supply.served(company_a.company_id)


@pytest.fixture
def access_token(client, company_a):
    return supply.token(client, company_a, "contribute:language contribute:household")


def stored():
    return db.session.scalar(select(func.count()).select_from(RegisteredRecord))


def events(tag):
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.tag == str(tag))
                                   .order_by(AuditEvent.id)))


def test_a_batch_is_stored_with_its_provenance(client, company_a, hanako, access_token):
    """Test that a batch is stored whole, with company, service, contract and times."""
    resident_id, sub = hanako
    answer = supply.post(client, access_token, [
        supply.record(sub, "ja", record_id="r-1"),
        supply.record(sub, {"members": 3, "children": 1}, category="household", record_id="r-2"),
    ])
    assert answer.status_code == 201, answer.text
    assert answer.json == {"stored": 2, "duplicates": 0}
    row = db.session.scalar(select(RegisteredRecord).where(RegisteredRecord.record_id == "r-1"))
    assert (row.resident_id, row.company_id, row.client_id, row.contract_id, row.value) == \
        (resident_id, company_a.company_id, company_a.client_id, company_a.contract_id, "ja")
    assert row.collected_at < row.received_at < row.expires_at
    contributed = events(AuditTag.RECORD_CONTRIBUTE)
    assert [e.resident_id for e in contributed] == [resident_id, resident_id]
    assert contributed[0].data["category"] == "language"
    assert "value" not in contributed[0].data


def test_the_same_batch_again_counts_duplicates(client, hanako, access_token):
    """Test that a batch sent twice is idempotent by record_id."""
    _, sub = hanako
    batch = [supply.record(sub, "ja", record_id="r-1", collected_at="2026-12-01T10:00:00+09:00")]
    assert supply.post(client, access_token, batch).json == {"stored": 1, "duplicates": 0}
    again = supply.post(client, access_token, batch)
    assert again.status_code == 201
    assert again.json == {"stored": 0, "duplicates": 1}
    assert stored() == 1


def test_a_record_id_reused_for_another_value_is_a_conflict(client, hanako, access_token):
    """Test that a record_id naming a different record already is refused with 409."""
    _, sub = hanako
    supply.post(client, access_token, [supply.record(sub, "ja", record_id="r-1")])
    answer = supply.post(client, access_token, [supply.record(sub, "en", record_id="r-1")])
    assert answer.status_code == 409
    assert answer.json["error"] == "conflict"
    assert answer.json["field"] == "records[0].record_id"
    assert stored() == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"records": []}, "records"),
    ({"records": "x"}, "records"),
    ({"events": []}, "events"),
    ({"records": [{"sub": "s", "category": "language", "value": "ja", "record_id": "r"}]},
     "records[0].collected_at"),
    ({"records": [{"sub": "s", "category": "language", "value": "ja", "record_id": "r",
                   "collected_at": "2026-12-01T10:00:00", }]}, "records[0].collected_at"),
    ({"records": [{"sub": "s", "category": "language", "value": "ja", "record_id": "r",
                   "collected_at": "2099-12-01T10:00:00Z"}]}, "records[0].collected_at"),
    ({"records": [{"sub": "s", "category": "nope", "value": "ja", "record_id": "r",
                   "collected_at": "2026-12-01T10:00:00Z"}]}, "records[0].category"),
    ({"records": [{"sub": "s", "category": "language", "value": "ja", "record_id": "",
                   "collected_at": "2026-12-01T10:00:00Z"}]}, "records[0].record_id"),
    ({"records": [{"sub": 1, "category": "language", "value": "ja", "record_id": "r",
                   "collected_at": "2026-12-01T10:00:00Z"}]}, "records[0].sub"),
    ({"records": [{"sub": "s", "category": "language", "value": "ja", "record_id": "r",
                   "collected_at": "2026-12-01T10:00:00Z", "extra": 1}]}, "records[0].extra"),
])
def test_malformed_batches_are_invalid_requests(client, access_token, body, field):
    """Test that a malformed batch is 400 invalid_request naming the field."""
    answer = supply.post(client, access_token, body)
    assert answer.status_code == 400, answer.text
    assert answer.json["error"] == "invalid_request"
    assert answer.json["field"] == field
    assert stored() == 0


def test_repeated_record_ids_in_one_batch_are_refused(client, hanako, access_token):
    _, sub = hanako
    answer = supply.post(client, access_token, [supply.record(sub, record_id="r"),
                                                 supply.record(sub, "en", record_id="r")])
    assert answer.status_code == 400
    assert answer.json["field"] == "records[1].record_id"


def test_a_value_outside_the_schema_refuses_the_whole_batch(client, hanako, access_token):
    """Test that one record whose value does not fit the schema refuses all of them."""
    _, sub = hanako
    answer = supply.post(client, access_token, [
        supply.record(sub, "ja", record_id="ok"),
        supply.record(sub, {"members": 0}, category="household", record_id="bad"),
    ])
    assert answer.status_code == 400
    assert answer.json["field"] == "records[1].value"
    assert "members" in answer.json["error_description"]
    assert stored() == 0


def test_a_body_that_is_not_json(client, access_token):
    answer = client.post("/api/registered-data", data="x", content_type="text/plain",
                         headers={"Authorization": f"Bearer {access_token}"})
    assert answer.status_code == 400
    assert answer.json["error"] == "invalid_request"


def test_a_body_that_is_not_an_object(client, access_token):
    answer = client.post("/api/registered-data", json=[1],
                         headers={"Authorization": f"Bearer {access_token}"})
    assert answer.status_code == 400
    assert answer.json["field"] == ""


def test_without_a_token(client):
    assert client.post("/api/registered-data", json={"records": []}).status_code == 401


def test_unknown_and_foreign_subs_get_one_answer(client, company_a, hanako, access_token):
    """Test that a sub of another company, of nobody, or of a deleted resident are refused
    alike, so the contributor learns nothing about who exists."""
    other = factories.company("B社")
    _, foreign_sub = supply.served(other, "taro@example.jp")
    answers = [supply.post(client, access_token, [supply.record(sub)])
               for sub in (foreign_sub, "no-such-sub")]
    assert [a.status_code for a in answers] == [403, 403]
    assert answers[0].json == answers[1].json
    assert answers[0].json["error"] == "access_denied"
    assert answers[0].json["field"] == "records[0].sub"
    refused = events(AuditTag.RECORD_REFUSED)
    assert [e.data["reason"] for e in refused] == ["unknown_subject", "unknown_subject"]
    assert refused[0].data["unknown_subjects"] == 1
    assert stored() == 0


def test_a_category_outside_the_token_is_insufficient_scope(client, company_a, hanako):
    _, sub = hanako
    token = supply.token(client, company_a, "contribute:language")
    answer = supply.post(client, token, [supply.record(sub, {"members": 2},
                                                       category="household")])
    assert answer.status_code == 403
    assert answer.json["error"] == "insufficient_scope"
    assert "contribute:household" in answer.json["error_description"]


def test_an_ended_contract_refuses_contributions_and_says_why(client, company_a, hanako,
                                                              access_token):
    """Test that a contract ended after the token was issued refuses the batch (403, the
    reason given), audited as a contract refusal."""
    _, sub = hanako
    contracts.end(company_a.contract_id)
    db.session.commit()
    answer = supply.post(client, access_token, [supply.record(sub)])
    assert answer.status_code == 403
    assert answer.json["error"] == "access_denied"
    assert "was ended" in answer.json["error_description"]
    [refusal] = events(AuditTag.DATA_CONTRACT_REFUSED)
    assert refusal.data["category"] == "language"
    assert refusal.company_id == company_a.company_id
    assert stored() == 0


# The contract's last day is tomorrow; with no successor the refusal says "has expired",
# with one that starts later "is not in force yet".
@pytest.mark.parametrize(("successor_from", "why"), [
    (None, "the data-use contract for 'language' has expired"),
    (5, "the data-use contract for 'language' is not in force yet"),
])
def test_a_contract_that_ran_out_refuses_contributions_and_says_why(
        client, company_a, hanako, successor_from, why):
    """Test that the morning after the contract's last day a batch under a token issued
    the evening before is refused (403, the reason in the description), audited as a
    contract refusal and a refused batch, and nothing is stored."""
    _, sub = hanako
    evening = data_links.runs_out_tomorrow(company_a.contract_id, successor_from)
    with freeze_time(evening) as clock:
        access_token = supply.token(client, company_a, "contribute:language")
        clock.move_to(evening + dt.timedelta(minutes=15))
        answer = supply.post(client, access_token, [supply.record(sub)])
    assert answer.status_code == 403
    assert answer.json["error"] == "access_denied"
    assert answer.json["field"] == "records[0].category"
    assert why in answer.json["error_description"]
    [refusal] = events(AuditTag.DATA_CONTRACT_REFUSED)
    assert refusal.data["reason"] == why and refusal.data["use"] == "contribute"
    assert refusal.data["category"] == "language"
    assert refusal.company_id == company_a.company_id
    assert refusal.client_id == company_a.client_id
    [batch] = events(AuditTag.RECORD_REFUSED)
    assert batch.company_id == company_a.company_id
    assert stored() == 0


def test_the_token_endpoint_refuses_a_scope_whose_contract_ended(client, company_a):
    """Test that contribute:<key> is not issued once the contract has ended (invalid_scope)."""
    contracts.end(company_a.contract_id)
    db.session.commit()
    answer = client.post("/token", data={"grant_type": "client_credentials",
                                         "scope": "contribute:language"},
                         auth=(company_a.client_id, company_a.client_secret))
    assert answer.status_code == 400
    assert answer.json["error"] == "invalid_scope"
    assert "was ended" in answer.json["error_description"]
    [refusal] = events(AuditTag.DATA_CONTRACT_REFUSED)
    assert refusal.data["use"] == "token"


def test_a_stopped_collection_refuses_the_company(client, company_a, hanako, access_token):
    resident_id, sub = hanako
    db.session.add(CollectionStop(resident_id=resident_id, company_id=company_a.company_id))
    db.session.commit()
    answer = supply.post(client, access_token, [supply.record(sub)])
    assert answer.status_code == 403
    assert "stopped collection" in answer.json["error_description"]


def test_a_resident_token_cannot_contribute(client, app):
    """Test that contributions need a client_credentials token (no resident)."""
    who = supply.contributor("A社")
    rp = factories.rp(who.company_id)
    factories.resident()
    token = factories.tokens(client, rp, scope="openid")["access_token"]
    answer = supply.post(client, token, [supply.record("x")])
    assert answer.status_code == 403
    assert answer.json["error"] == "access_denied"


def test_the_contributor_deletes_its_record(client, company_a, hanako, access_token):
    """Test that DELETE removes the company's record (204), audited, and 404 after."""
    resident_id, sub = hanako
    supply.post(client, access_token, [supply.record(sub, record_id="r/1")])
    headers = {"Authorization": f"Bearer {access_token}"}
    answer = client.delete("/api/registered-data/r/1", headers=headers)
    assert answer.status_code == 204
    assert stored() == 0
    [withdrawn] = events(AuditTag.RECORD_WITHDRAW)
    assert withdrawn.resident_id == resident_id
    again = client.delete("/api/registered-data/r/1", headers=headers)
    assert again.status_code == 404
    assert again.json["error"] == "not_found"


def test_another_company_cannot_delete_a_record(client, hanako, access_token):
    _, sub = hanako
    supply.post(client, access_token, [supply.record(sub, record_id="r-1")])
    other = supply.contributor("B社")
    token = supply.token(client, other, "contribute:language")
    answer = client.delete("/api/registered-data/r-1",
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 404
    assert stored() == 1


def test_expired_records_are_purged(app, client, hanako, access_token):
    """Test that purge_expired deletes records past retention, one audit event per
    company and category."""
    _, sub = hanako
    supply.post(client, access_token, [supply.record(sub, record_id=f"r-{i}") for i in range(3)])
    assert records.purge_expired(utcnow()) == 0
    assert records.purge_expired(utcnow() + dt.timedelta(days=400)) == 3
    db.session.commit()
    [expired] = events(AuditTag.RECORD_EXPIRE)
    assert expired.data == {"category": "language", "count": 3}
    assert stored() == 0


def test_batches_are_limited(client, hanako, access_token, app):
    _, sub = hanako
    limit = app.extensions["idp.settings"].registered_data_max_batch
    answer = supply.post(client, access_token,
                         [supply.record(sub, record_id=f"r-{i}") for i in range(limit + 1)])
    assert answer.status_code == 400
    assert answer.json["field"] == "records"
