"""The usage report's registered-data part, from RECORD_* events built in the test, and
companies' own usage reports kept as received."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import select

from idp.admin import reports
from idp.admin import stats
from idp.audit.models import AuditEvent
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.exchange import usage
from idp.exchange.models import DataLink
from idp.extensions import db
from tests import factories
from tests.helpers import exchange_supply as supply


@pytest.fixture
def scene(app):
    """A contributes language and household; B's service receives through two links."""
    a = supply.contributor("A社", ("language", "household"))
    b = supply.contributor("B社", ("language", "household"))
    resident_id, _ = supply.served(a.company_id)
    rp = factories.rp(b.company_id)
    now = utcnow()
    links = [DataLink(resident_id=resident_id, client_id=rp.client_id,
                      source_company_id=a.company_id, category=key, granted_at=now)
             for key in ("language", "household")]
    db.session.add_all(links)
    db.session.flush()
    for key, n in (("language", 3), ("household", 1)):
        for _ in range(n):
            record(AuditTag.RECORD_CONTRIBUTE, client_id=a.client_id, company_id=a.company_id,
                   resident_id=resident_id, category=key, record_id="x")
    record(AuditTag.RECORD_WITHDRAW, client_id=a.client_id, company_id=a.company_id,
           category="language", record_id="x")
    record(AuditTag.RECORD_REFUSED, client_id=a.client_id, company_id=a.company_id,
           reason="unknown_subject")
    for _ in range(2):
        record(AuditTag.RECORD_RELEASE, client_id=rp.client_id, company_id=b.company_id,
               resident_id=resident_id, categories=["language", "household"],
               links=[links[0].id, links[1].id])
    record(AuditTag.RECORD_RELEASE, client_id=rp.client_id, company_id=b.company_id,
           resident_id=resident_id, categories=["language"], links=[links[0].id])
    db.session.commit()
    return a, b, rp, links


def today():
    return stats.today()  # the report's days are Japan's


def test_contributions_per_category(scene):
    a, *_ = scene
    data = reports.usage(a.company_id, today() - dt.timedelta(days=1), today() + dt.timedelta(
        days=1))["registered_data"]
    assert data["contributions"] == {"total": 4, "refused_batches": 1, "withdrawn": 1}
    assert data["categories"] == [
        {"category": "household", "contributed": 1, "withdrawn": 0, "released": 0},
        {"category": "language", "contributed": 3, "withdrawn": 1, "released": 0}]
    assert data["contracts_in_force"] == [a.contract_id]
    # A's records went to B's service through both links.
    assert [(r["category"], r["releases"], r["source_company"]) for r in
            data["released_from"]] == [("language", 3, "A社"), ("household", 2, "A社")]


def test_releases_per_category_and_link(scene):
    _, b, rp, links = scene
    data = reports.usage(b.company_id, today() - dt.timedelta(days=1), today() + dt.timedelta(
        days=1))["registered_data"]
    assert data["releases"] == 3
    assert {r["category"]: r["released"] for r in data["categories"]} == \
        {"language": 3, "household": 2}
    assert data["links"] == [
        {"link_id": links[0].id, "category": "language", "source_company_id": links[0]
         .source_company_id, "source_company": "A社", "recipient_client_id": rp.client_id,
         "releases": 3},
        {"link_id": links[1].id, "category": "household", "source_company_id": links[1]
         .source_company_id, "source_company": "A社", "recipient_client_id": rp.client_id,
         "releases": 2}]
    assert data["released_from"] == []
    csv = reports.to_csv(reports.usage(b.company_id, today(), today()))
    assert f"links,{rp.client_id},A社 → {rp.client_id},link {links[0].id} language,3" in csv


def test_outside_the_period_nothing_counts(scene):
    a, *_ = scene
    data = reports.usage(a.company_id, today() - dt.timedelta(days=10),
                         today() - dt.timedelta(days=5))["registered_data"]
    assert data["contributions"]["total"] == 0
    assert data["categories"] == []


def test_a_company_report_is_kept_as_received(scene):
    """Test that an uploaded report keeps its bytes and SHA-256, audited, and shows in
    the usage report of an overlapping period."""
    a, *_ = scene
    body = "期間,件数\n2026-11,12\n".encode()
    row = usage.upload(a.contract_id, "../利用状況 11月.csv", "text/csv; charset=utf-8", body,
                       period_start=dt.date(2026, 11, 1), period_end=dt.date(2026, 11, 30),
                       admin_id="ad_x")
    db.session.commit()
    assert (row.filename, row.content_type, row.body) == ("利用状況 11月.csv", "text/csv", body)
    assert row.sha256 == hashlib.sha256(body).hexdigest()
    assert [r.id for r in usage.uploaded(a.company_id)] == [row.id]
    event = db.session.scalar(select(AuditEvent).where(
        AuditEvent.tag == str(AuditTag.USAGE_REPORT_UPLOAD)))
    assert event.data["sha256"] == row.sha256
    assert event.company_id == a.company_id
    report = reports.usage(a.company_id, dt.date(2026, 11, 15), dt.date(2026, 12, 14))
    assert [r["id"] for r in report["registered_data"]["submitted_reports"]] == [row.id]


@pytest.mark.parametrize(("contract", "body", "start", "end", "message"), [
    ("nope", b"x", dt.date(2026, 11, 1), dt.date(2026, 11, 30), "no such contract"),
    (None, b"", dt.date(2026, 11, 1), dt.date(2026, 11, 30), "empty"),
    (None, b"x", dt.date(2026, 11, 30), dt.date(2026, 11, 1), "ends before"),
])
def test_uploads_refused(scene, contract, body, start, end, message):
    a, *_ = scene
    with pytest.raises(usage.UploadError, match=message):
        usage.upload(contract or a.contract_id, "r.csv", "text/csv", body,
                     period_start=start, period_end=end)
