"""Registered data in the resident's privacy operations: the usage history shows each
contribution, the export holds every exchange row of the resident, account deletion
removes them."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func
from sqlalchemy import select

from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.exchange import residents
from idp.exchange.models import CollectionStop
from idp.exchange.models import DataLink
from idp.exchange.models import RegisteredRecord
from idp.extensions import db
from tests import factories
from tests.helpers.accounts import post_form
from tests.helpers.accounts import sign_in
from tests.helpers.accounts import tags
from tests.helpers.exchange_residents import contribute
from tests.helpers.exchange_residents import contributor


@pytest.fixture
def hanako(app):
    return factories.resident()


@pytest.fixture
def jiro(app):
    return factories.resident("jiro@example.jp")


def titles(html: str) -> list[str]:
    return re.findall(r'<p class="event-title">([^<]+)</p>', html)


def count(model, resident_id: str) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model)
                             .where(model.resident_id == resident_id))


def link(resident_id: str, source_company_id: str, client_id: str) -> DataLink:
    row = DataLink(resident_id=resident_id, client_id=client_id,
                   source_company_id=source_company_id, category="language",
                   purpose="観光案内", granted_at=utcnow(), expires_at=None)
    db.session.add(row)
    db.session.commit()
    return row


def test_history_shows_each_contribution(client, hanako, jiro):
    """Test that a RECORD_CONTRIBUTE event about the resident appears with the company,
    the service and the category; another resident's does not."""
    a = contributor("A社")
    contribute(a, hanako.id, "language", "ja")
    contribute(a, jiro.id, "occupation", "student")
    sign_in(client)
    html = client.get("/account/history").text
    assert "会員企業からの登録データの収集" in titles(html)
    assert "XXXサービス（提供者：A社）" in html
    assert "使用言語" in html
    assert "職業" not in html


def test_history_reads_the_category_from_the_event_alone(client, hanako):
    """Test that an event carrying only {category} and company_id (no record id, no client)
    reads as a contribution from that company; an unknown key is shown as it is."""
    a = contributor("A社")
    record(AuditTag.RECORD_CONTRIBUTE, resident_id=hanako.id, company_id=a.company_id,
           category="household")
    record(AuditTag.RECORD_CONTRIBUTE, resident_id=hanako.id, company_id=a.company_id,
           category="retired_key")
    db.session.commit()
    sign_in(client)
    html = client.get("/account/history").text
    assert titles(html).count("会員企業からの登録データの収集") == 2
    assert "家族構成" in html and "retired_key" in html
    assert '<p class="event-who">A社</p>' in html


def test_history_filter_by_company_keeps_its_contributions(client, hanako):
    a, b = contributor("A社"), contributor("B社")
    contribute(a, hanako.id, "language", "ja")
    contribute(b, hanako.id, "occupation", "student")
    sign_in(client)
    html = client.get("/account/history", query_string={"company": b.company_id}).text
    assert titles(html) == ["会員企業からの登録データの収集"]
    assert "職業" in html and "使用言語" not in html


def test_history_shows_the_residents_own_actions(client, hanako):
    a = contributor("A社")
    row = contribute(a, hanako.id, "language", "ja", audited=False)
    sign_in(client)
    post_form(client, "/account/data", {"note": "違う"},
              action=f"/account/data/items/{row.id}/dispute")
    post_form(client, "/account/data", {"delete_sent": "yes"},
              action=f"/account/data/companies/{a.company_id}/stop")
    post_form(client, "/account/data", {}, action=f"/account/data/companies/{a.company_id}/resume")
    assert titles(client.get("/account/history").text)[:3] == [
        "登録データの収集の再開", "登録データの収集の停止", "登録データの誤りの指摘"]


def test_export_includes_the_exchange_tables(client, hanako, jiro):
    """Test that /account/export has the records with provenance, the links and the stops
    of the resident, and none of another resident's."""
    a, b = contributor("A社"), contributor("B社")
    row = contribute(a, hanako.id, "language", "ja")
    contribute(a, jiro.id, "language", "en-not-mine")
    recipient = factories.rp(factories.company("C社"))
    link(hanako.id, a.company_id, recipient.client_id)
    link(jiro.id, a.company_id, recipient.client_id)
    residents.stop(hanako.id, b.company_id)
    db.session.commit()
    sign_in(client)
    response = client.get("/account/export")
    assert response.status_code == 200
    data = json.loads(response.text)
    (item,) = data["registered_data"]
    assert item["value"] == "ja" and item["company"] == "A社"
    assert item["record_id"] == row.record_id
    assert item["contributing_service"]["service"] == "XXXサービス"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", item["collected_at"])
    (exported_link,) = data["data_links"]
    assert exported_link["source_company"] == "A社"
    assert exported_link["recipient"]["company"] == "C社"
    assert [s["company"] for s in data["collection_stops"]] == ["B社"]
    assert "en-not-mine" not in response.text


def test_account_deletion_removes_every_exchange_row_of_the_resident(client, hanako, jiro):
    a = contributor("A社")
    contribute(a, hanako.id, "language", "ja")
    contribute(a, jiro.id, "language", "en")
    recipient = factories.rp(factories.company("C社"))
    link(hanako.id, a.company_id, recipient.client_id)
    link(jiro.id, a.company_id, recipient.client_id)
    residents.stop(hanako.id, a.company_id)
    db.session.commit()
    rid = hanako.id
    sign_in(client)
    response = post_form(client, "/account/delete", {"password": factories.PASSWORD})
    assert response.status_code == 200
    for model in (RegisteredRecord, DataLink, CollectionStop):
        assert count(model, rid) == 0
    assert count(RegisteredRecord, jiro.id) == 1 and count(DataLink, jiro.id) == 1
    (deleted,) = tags(AuditTag.ACCOUNT_DELETE)
    assert (deleted.data["registered_records_deleted"], deleted.data["data_links_deleted"],
            deleted.data["collection_stops_deleted"]) == (1, 1, 1)
