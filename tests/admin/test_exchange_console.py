"""The console's data-exchange pages: categories, contracts, companies' usage reports,
the monitoring's alerts."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from freezegun import freeze_time

from idp.admin import stats
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.exchange import categories
from idp.exchange import contracts
from idp.exchange import monitoring
from idp.exchange.models import Category
from idp.exchange.models import CompanyUsageReport
from idp.extensions import db
from tests import factories
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.admin import hidden


@pytest.fixture
def browser(client, app):
    categories.ensure_defaults()
    db.session.commit()
    browser = AdminBrowser(client, enrolled_admin())
    assert browser.login().status_code == 303
    return browser


def test_categories_page_lists_and_adds(browser):
    page = browser.client.get("/admin/categories")
    assert page.status_code == 200
    assert "使用言語" in page.text
    answer = browser.form("/admin/categories", "/admin/categories", key="commute",
                          label_ja="通勤手段", label_en="Commute",
                          schema='{"type": "string"}', sensitivity="normal",
                          retention_days="90", statistics="yes")
    assert answer.status_code == 303
    db.session.rollback()
    row = db.session.get(Category, "commute")
    assert (row.retention_days, row.statistics) == (90, True)
    assert events(str(AuditTag.CATEGORY_CREATE))[-1].admin_id == browser.admin.id


def test_a_bad_schema_is_refused_with_the_reason(browser):
    answer = browser.form("/admin/categories", "/admin/categories", key="commute",
                          label_ja="通勤手段", label_en="Commute", schema="{not json")
    assert answer.status_code == 303
    assert db.session.get(Category, "commute") is None
    assert events(str(AuditTag.ADMIN_REFUSED))
    assert "JSON" in browser.client.get("/admin/categories").text


def test_a_category_is_edited_on_the_console(browser):
    """Test that the edit form changes labels, schema, retention and the statistics flag
    (unticked: off), audited with the admin."""
    answer = browser.form("/admin/categories", "/admin/categories/language",
                          label_ja="利用言語", label_en="Language used",
                          schema='{"type": "string", "maxLength": 8}', retention_days="30")
    assert answer.status_code == 303
    db.session.rollback()
    row = db.session.get(Category, "language")
    assert (row.label_ja, row.label_en, row.retention_days, row.statistics) == (
        "利用言語", "Language used", 30, False)
    assert row.value_schema == {"type": "string", "maxLength": 8}
    (event,) = events(str(AuditTag.CATEGORY_UPDATE))
    assert event.admin_id == browser.admin.id
    assert "利用言語" in browser.client.get("/admin/categories").text


def test_a_schema_change_with_values_held_is_refused_with_the_reason(browser):
    from tests.helpers.exchange_residents import contribute
    from tests.helpers.exchange_residents import contributor

    contribute(contributor(keys=("language",)), factories.resident().id, "language", "ja")
    answer = browser.form("/admin/categories", "/admin/categories/language",
                          label_ja="使用言語", label_en="Language",
                          schema='{"type": "integer"}', retention_days="365",
                          statistics="yes")
    assert answer.status_code == 303
    db.session.rollback()
    assert db.session.get(Category, "language").value_schema["type"] == "string"
    assert events(str(AuditTag.CATEGORY_UPDATE)) == []
    assert events(str(AuditTag.ADMIN_REFUSED))
    assert "cannot change while values of" in browser.client.get("/admin/categories").text


def test_a_category_is_retired_on_the_console_once_its_key_is_typed(browser):
    """Test that retiring needs the key typed; then the category leaves the page."""
    answer = browser.form("/admin/categories", "/admin/categories/occupation/retire",
                          confirm="language")
    assert answer.status_code == 303
    db.session.rollback()
    assert db.session.get(Category, "occupation").retired_at is None
    answer = browser.form("/admin/categories", "/admin/categories/occupation/retire",
                          confirm="occupation")
    assert answer.status_code == 303
    db.session.rollback()
    assert db.session.get(Category, "occupation").retired_at is not None
    assert events(str(AuditTag.CATEGORY_RETIRE))[-1].admin_id == browser.admin.id
    page = browser.client.get("/admin/categories").text
    assert 'id="confirm-occupation"' not in page and 'id="confirm-language"' in page


def test_contracts_record_upload_download_and_end(browser):
    """Test a contract recorded, a company's report uploaded and downloaded as received,
    and the contract ended."""
    company = factories.company("A社")
    answer = browser.form(f"/admin/contracts?company={company}", "/admin/contracts",
                          company_id=company, category=["language", "household"],
                          purpose="属性に応じたサービス提供", valid_until="2099-03-31",
                          retention_days="180")
    assert answer.status_code == 303
    db.session.rollback()
    [contract] = contracts.for_company(company)
    assert contract.categories == ["language", "household"]
    path = f"/admin/contracts?company={company}"
    page = browser.client.get(path)
    upload_action = f"/admin/contracts/{contract.id}/usage-reports"
    body = "月,件数\n11,3\n".encode()
    answer = browser.client.post(upload_action, data={
        "csrf_token": hidden(page.text, "csrf_token", upload_action),
        "form_token": hidden(page.text, "form_token", upload_action),
        "return_to": path, "company_id": company, "period_start": "2026-11-01",
        "period_end": "2026-11-30",
        "file": (io.BytesIO(body), "利用状況.csv", "text/csv")},
        content_type="multipart/form-data")
    assert answer.status_code == 303
    db.session.rollback()
    report = db.session.query(CompanyUsageReport).one()
    assert report.sha256 == hashlib.sha256(body).hexdigest()
    assert events(str(AuditTag.USAGE_REPORT_UPLOAD))[-1].admin_id == browser.admin.id
    download = browser.client.get(f"/admin/usage-reports/{report.id}")
    assert download.status_code == 200
    assert download.data == body
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert "attachment" in download.headers["Content-Disposition"]
    assert report.sha256 in browser.client.get(path).text
    # Ending needs a fresh check; the admin has just signed in.
    answer = browser.form(path, f"/admin/contracts/{contract.id}/end", company_id=company)
    assert answer.status_code == 303
    db.session.rollback()
    assert contracts.for_company(company)[0].ended_at is not None


def test_an_upload_for_an_unknown_contract_is_refused(browser):
    company = factories.company("A社")
    contracts.create(company, ["language"], "p", valid_until=dt.date(2099, 1, 1))
    db.session.commit()
    page = browser.client.get("/admin/contracts")
    action = hidden(page.text, "form_token")  # any form token of the page
    answer = browser.client.post("/admin/contracts/nope/usage-reports", data={
        "csrf_token": hidden(page.text, "csrf_token"), "form_token": action,
        "return_to": "/admin/contracts", "period_start": "2026-11-01",
        "period_end": "2026-11-30", "file": (io.BytesIO(b"x"), "r.csv", "text/csv")},
        content_type="multipart/form-data")
    assert answer.status_code == 303
    assert events(str(AuditTag.ADMIN_REFUSED))
    assert browser.client.get("/admin/usage-reports/999").status_code == 404


def test_monitoring_alerts_with_evidence_and_acknowledge(browser):
    company = factories.company("A社")
    with freeze_time(utcnow() - dt.timedelta(hours=1)):
        for _ in range(100):
            record(AuditTag.RECORD_RELEASE, company_id=company, categories=["language"],
                   links=[1])
        db.session.commit()
    [alert] = monitoring.run()
    db.session.commit()
    page = browser.client.get("/admin/monitoring")
    assert page.status_code == 200
    assert company in page.text
    assert "&#34;count&#34;: 100" in page.text or '"count": 100' in page.text
    answer = browser.form("/admin/monitoring", f"/admin/monitoring/{alert.id}/acknowledge")
    assert answer.status_code == 303
    [acknowledged] = events(str(AuditTag.MONITORING_ACKNOWLEDGE))
    assert acknowledged.admin_id == browser.admin.id


def test_the_usage_report_page_shows_registered_data(browser):
    company = factories.company("A社")
    record(AuditTag.RECORD_CONTRIBUTE, company_id=company, category="language")
    db.session.commit()
    today = stats.today().isoformat()  # the report's days are Japan's
    page = browser.client.get(f"/admin/reports?company={company}&from={today}&to={today}")
    assert page.status_code == 200
    assert "language" in page.text


def test_pages_need_an_admin(client):
    for path in ("/admin/categories", "/admin/contracts", "/admin/monitoring",
                 "/admin/usage-reports/1"):
        assert client.get(path).status_code == 303
