"""Editing and retiring categories (idp.exchange.categories.update / retire): what may
change, when the schema is frozen, why a retirement is refused, and what a retired
category no longer allows."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.exchange import categories
from idp.exchange import contracts
from idp.exchange import records
from idp.exchange.categories import CategoryError
from idp.exchange.models import Category
from idp.exchange.models import DataContract
from idp.extensions import db
from tests import factories
from tests.helpers.exchange_residents import contribute
from tests.helpers.exchange_residents import contributor


@pytest.fixture
def defaults(app):
    categories.ensure_defaults()
    db.session.commit()


def audited(tag) -> list[AuditEvent]:
    db.session.commit()  # audit records are written with the unit of work
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.tag == str(tag))
                                   .order_by(AuditEvent.id)))


def test_labels_retention_and_statistics_change_audited(defaults):
    """Test that the labels, retention and statistics flag change, with one audit record
    naming the fields changed; the same values again change nothing."""
    category, changed = categories.update(
        "language", label_ja="利用言語", label_en="Language used", retention_days=30,
        statistics=False, actor="cli")
    assert changed == ["label_ja", "label_en", "retention_days", "statistics"]
    row = db.session.get(Category, "language")
    assert (row.label_ja, row.label_en, row.retention_days, row.statistics) == (
        "利用言語", "Language used", 30, False)
    (event,) = audited(AuditTag.CATEGORY_UPDATE)
    assert event.actor == "cli" and event.data["changed"] == changed
    assert event.data["retention_days"] == 30
    assert categories.update("language", label_ja="利用言語", retention_days=30)[1] == []
    assert len(audited(AuditTag.CATEGORY_UPDATE)) == 1


@pytest.mark.parametrize(("fields", "why"), [
    ({"label_ja": "  "}, "both labels"),
    ({"retention_days": 0}, "1 to 3650 days"),
    ({"retention_days": 3651}, "1 to 3650 days"),
    ({"schema": {"type": "nonsense"}}, "not a valid JSON Schema"),
    ({"schema": ["not", "an", "object"]}, "JSON object"),
])
def test_bad_changes_are_refused_and_change_nothing(defaults, fields, why):
    with pytest.raises(CategoryError, match=why):
        categories.update("language", **fields)
    db.session.rollback()
    row = db.session.get(Category, "language")
    assert (row.label_ja, row.retention_days) == ("使用言語", 365)
    assert audited(AuditTag.CATEGORY_UPDATE) == []


def test_the_schema_changes_only_while_no_value_is_held(defaults):
    """Test that a new schema is taken while nothing of the category is held, and refused
    (saying how many values are held) once one is."""
    wider = {"type": "string", "maxLength": 20}
    assert categories.update("language", schema=wider)[1] == ["value_schema"]
    source = contributor()
    resident = factories.resident()
    contribute(source, resident.id, "language", "ja")
    with pytest.raises(CategoryError, match=r"cannot change while values of 'language' "
                                            r"are held \(1\)"):
        categories.update("language", schema={"type": "string"})
    db.session.rollback()
    assert db.session.get(Category, "language").value_schema == wider
    # The same schema again is no change, so it is not refused.
    assert categories.update("language", schema=wider, label_en="Lang")[1] == ["label_en"]


def test_unknown_or_retired_keys_are_refused(defaults):
    with pytest.raises(CategoryError, match="no category 'commute' in use"):
        categories.update("commute", label_ja="通勤")
    categories.retire("occupation")
    with pytest.raises(CategoryError, match="no category 'occupation' in use"):
        categories.update("occupation", label_ja="職業")
    with pytest.raises(CategoryError, match="no category 'occupation' in use"):
        categories.retire("occupation")


def test_retiring_is_refused_while_a_contract_not_run_out_names_it(defaults):
    """Test that a contract in force (or not yet in force) blocks the retirement, naming
    it; once ended, the category retires, audited with the records still held."""
    source = contributor(keys=("language",))
    resident = factories.resident()
    contribute(source, resident.id, "language", "ja")
    with pytest.raises(CategoryError, match=f"contracts still name 'language': "
                                            f"{source.contract_id}; end them first"):
        categories.retire("language")
    contracts.end(source.contract_id)
    retired = categories.retire("language", actor="admin")
    assert retired.retired_at is not None
    (event,) = audited(AuditTag.CATEGORY_RETIRE)
    assert event.data == {"category": "language", "records_held": 1}
    assert "language" not in [c.key for c in categories.in_use()]


def test_a_retired_category_is_no_longer_contributed_contracted_or_asked_for(client,
                                                                             defaults):
    """Test that after retirement a contract cannot name it, a batch of it is refused,
    its scopes leave discovery, and a service registered for it cannot ask for it."""
    source = contributor(keys=("occupation",))
    rp = factories.rp(source.company_id,
                      scopes=[*factories.ALL_SCOPES, "registered:occupation"])
    until = db.session.get(DataContract, source.contract_id).valid_until
    contracts.end(source.contract_id)
    categories.retire("occupation")
    db.session.commit()
    with pytest.raises(contracts.ContractError, match="unknown categories: occupation"):
        contracts.create(source.company_id, ["occupation"], "p", valid_until=until)
    with pytest.raises(records.RecordError, match="unknown category"):
        records.parse({"records": [{"sub": "s", "category": "occupation", "value": "student",
                                    "record_id": "r-1",
                                    "collected_at": "2026-12-01T10:00:00+09:00"}]})
    scopes = client.get("/.well-known/openid-configuration").json["scopes_supported"]
    assert "registered:occupation" not in scopes and "registered:language" in scopes
    response = factories.Browser(client).authorize(rp, scope="openid registered:occupation")
    assert factories.query(response.headers["Location"])["error"] == "invalid_scope"
