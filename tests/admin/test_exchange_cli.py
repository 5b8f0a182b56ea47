"""`idp categories`, `idp contracts` and family scopes on `idp clients create`."""

from __future__ import annotations

import json

from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.exchange import categories
from idp.extensions import db
from tests import factories


def tags():
    return [e.tag for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_categories_create_and_list(cli, tmp_path):
    """Test that an admin adds a category from a schema file and lists it as JSON."""
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "string", "enum": ["car", "bike"]}))
    result = cli("categories", "create", "--key", "commute", "--label-ja", "通勤手段",
                 "--label-en", "Commute", "--schema-file", str(schema), "--statistics",
                 "--sensitivity", "normal", "--retention-days", "90", "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert (created["key"], created["statistics"], created["retention_days"]) == \
        ("commute", True, 90)
    listed = json.loads(cli("categories", "list", "--json").output)
    assert [c["key"] for c in listed["categories"]] == ["commute"]
    assert str(AuditTag.CATEGORY_CREATE) in tags()


def test_a_bad_schema_is_refused(cli, tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "nonsense"}))
    result = cli("categories", "create", "--key", "commute", "--label-ja", "通勤手段",
                 "--label-en", "Commute", "--schema-file", str(schema))
    assert result.exit_code == 1
    assert "not a valid JSON Schema" in result.output


def test_categories_update_and_retire(cli, app, tmp_path):
    """Test that `idp categories update` changes labels, retention and the statistics
    flag (JSON: the fields changed), that `retire` is refused while a contract names the
    category and works once it ended, and that a retired category leaves the list."""
    categories.ensure_defaults()
    company = factories.company("A社")
    db.session.commit()
    result = cli("categories", "update", "language", "--label-ja", "利用言語",
                 "--retention-days", "30", "--no-statistics", "--json")
    assert result.exit_code == 0, result.output
    updated = json.loads(result.output)
    assert updated["changed"] == ["label_ja", "retention_days", "statistics"]
    assert (updated["label_ja"], updated["label_en"], updated["retention_days"],
            updated["statistics"]) == ("利用言語", "Language", 30, False)
    assert str(AuditTag.CATEGORY_UPDATE) in tags()
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "string", "maxLength": 8}))
    result = cli("categories", "update", "language", "--schema-file", str(schema), "--json")
    assert json.loads(result.output)["schema"] == {"type": "string", "maxLength": 8}

    contract = cli("contracts", "create", "--company", company, "--category", "language",
                   "--purpose", "多言語案内", "--valid-until", "2099-12-31", "--json")
    contract_id = json.loads(contract.output)["id"]
    refused = cli("categories", "retire", "language")
    assert refused.exit_code == 1
    assert f"contracts still name 'language': {contract_id}; end them first" in refused.output
    assert cli("contracts", "end", contract_id).exit_code == 0
    result = cli("categories", "retire", "language", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["retired_at"]
    listed = json.loads(cli("categories", "list", "--json").output)
    assert "language" not in [c["key"] for c in listed["categories"]]
    assert str(AuditTag.CATEGORY_RETIRE) in tags()
    again = cli("categories", "update", "language", "--label-en", "Lang")
    assert again.exit_code == 1 and "no category 'language' in use" in again.output


def test_contracts_create_list_end_and_client_scopes(cli, app):
    """Test the contract lifecycle from the CLI, and that a client may be registered for
    contribute:/registered: scopes only while a contract names the category."""
    categories.ensure_defaults()
    company = factories.company("A社")
    refused = cli("clients", "create", "--company", company, "--name", "A社バックエンド",
                  "--grant-type", "client_credentials", "--scope", "contribute:language")
    assert refused.exit_code == 1
    assert "no data-use contract" in refused.output
    result = cli("contracts", "create", "--company", company, "--category", "language",
                 "--category", "household", "--purpose", "属性に応じたサービス提供",
                 "--valid-until", "2099-03-31", "--liability", "甲乙協議",
                 "--audit-rights", "年1回", "--breach-contact", "security@a.example.jp", "--json")
    assert result.exit_code == 0, result.output
    contract = json.loads(result.output)
    assert contract["categories"] == ["language", "household"]
    assert contract["status"] == "in_force"
    registered = cli("clients", "create", "--company", company, "--name", "A社バックエンド",
                     "--grant-type", "client_credentials", "--scope", "contribute:language",
                     "--scope", "registered:household", "--json")
    assert registered.exit_code == 0, registered.output
    unknown = cli("clients", "create", "--company", company, "--name", "x",
                  "--grant-type", "client_credentials", "--scope", "contribute:nope")
    assert unknown.exit_code == 1
    assert "unknown scope" in unknown.output
    listed = json.loads(cli("contracts", "list", "--company", company, "--json").output)
    assert [c["id"] for c in listed["contracts"]] == [contract["id"]]
    ended = json.loads(cli("contracts", "end", contract["id"], "--json").output)
    assert ended["status"] == "ended"
    again = cli("contracts", "end", contract["id"])
    assert again.exit_code == 1
    assert "ended already" in again.output
    assert {str(AuditTag.DATA_CONTRACT_CREATE), str(AuditTag.DATA_CONTRACT_END)} <= set(tags())


def test_a_contract_for_an_unknown_company_or_category(cli, app):
    categories.ensure_defaults()
    company = factories.company("A社")
    result = cli("contracts", "create", "--company", "nope", "--category", "language",
                 "--purpose", "p", "--valid-until", "2099-03-31")
    assert result.exit_code == 1
    assert "no such company" in result.output
    result = cli("contracts", "create", "--company", company, "--category", "nope",
                 "--purpose", "p", "--valid-until", "2099-03-31")
    assert result.exit_code == 1
    assert "unknown categories" in result.output


def test_monitor_run_and_list(cli, app):
    """Test that `idp monitor run --json` prints one object with the new alerts."""
    import datetime as dt

    from freezegun import freeze_time

    from idp.audit.service import record
    from idp.db import utcnow

    company = factories.company("A社")
    with freeze_time(utcnow() - dt.timedelta(hours=1)):
        for _ in range(100):
            record(AuditTag.RECORD_RELEASE, company_id=company, categories=["language"],
                   links=[1])
        db.session.commit()
    result = cli("monitor", "run", "--json")
    assert result.exit_code == 0, result.output
    [alert] = json.loads(result.output)["alerts"]
    assert (alert["rule"], alert["company_id"]) == ("releases", company)
    assert json.loads(cli("monitor", "run", "--json").output) == {"alerts": []}
    listed = json.loads(cli("monitor", "list", "--open", "--json").output)
    assert [a["id"] for a in listed["alerts"]] == [alert["id"]]
