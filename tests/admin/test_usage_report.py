"""Usage reports for the data-use contract: `idp report usage` and the console page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from freezegun import freeze_time

from idp.admin import reports
from idp.admin import stats
from idp.clients import service as clients
from idp.consent import service as consent_service
from idp.db import utcnow
from idp.extensions import db
from idp.kiosk import service as kiosks
from tests import factories
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.oauth import ResidentBrowser
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo


@pytest.fixture
def activity(client):
    """A-sha's app used by two residents (one withdraws), its kiosk logging touches,
    and B-sha's app used once, all today."""
    factories.resident()
    factories.resident("taro@example.jp")
    company_id = factories.company("A社")
    app_rp = factories.rp(company_id)
    other_rp = factories.rp(factories.company("B社"))
    kiosk, kiosk_secret, _ = kiosks.create_kiosk(company_id, "北2条サイネージ", "北2条西4丁目")
    clients.record_contract(company_id, "CONS-2026-001", "1.0", dt.date(2026, 4, 1))
    db.session.commit()
    hanako = tokens_for(client, app_rp, "openid name email")
    userinfo(client, hanako["access_token"])
    taro_client = client.application.test_client()
    tokens_for(taro_client, app_rp, "openid email",
               browser=ResidentBrowser(taro_client, "taro@example.jp"))
    taro = db.session.scalar(db.select(factories.accounts.Resident).where(
        factories.accounts.Resident.email == "taro@example.jp"))
    consent_service.withdraw(taro.id, app_rp.client_id)
    db.session.commit()
    tokens_for(client, other_rp, "openid")
    token = client.post("/token", data={"grant_type": "client_credentials",
                                        "scope": "touch_events"},
                        auth=(kiosk.id, kiosk_secret)).json["access_token"]
    now = utcnow().isoformat()
    client.post("/api/touch-events", json={"events": [{"occurred_at": now, "target": "map"},
                                                      {"occurred_at": now, "target": "bus"}]},
                headers={"Authorization": f"Bearer {token}"})
    return company_id, app_rp, kiosk


def test_usage_report_counts(app, activity):
    """Test residents with consent, consents given and withdrawn, claims and touches."""
    company_id, app_rp, kiosk = activity
    today = stats.today()
    report = reports.usage(company_id, today, today)
    assert report["residents"] == {"with_consent": 2, "consents_given": 2,
                                   "consents_withdrawn": 1, "requests_declined": 0}
    by_claim = {row["claim"]: row for row in report["claims"]}
    assert by_claim["email"]["releases"] == 3  # two ID tokens and one UserInfo
    assert (by_claim["email"]["id_token"], by_claim["email"]["userinfo"]) == (2, 1)
    assert by_claim["name"]["releases"] == 2
    assert report["touch_events"] == {"total": 2, "with_resident": 0}
    assert report["tokens_issued"] == 3  # two code grants and the kiosk's client credentials
    assert report["contract"] == {"reference": "CONS-2026-001", "version": "1.0",
                                  "signed_on": "2026-04-01"}
    kiosk_row = next(c for c in report["clients"] if c["client_id"] == kiosk.id)
    assert (kiosk_row["kind"], kiosk_row["location"], kiosk_row["touch_events"]) == (
        "kiosk", "北2条西4丁目", 2)
    text = json.dumps(report, ensure_ascii=False)
    assert "hanako" not in text and "taro" not in text  # no resident identifiers


def test_report_period_excludes_other_days(app, activity):
    """Test that a period before the activity counts nothing (consents later do not count)."""
    company_id, *_ = activity
    last_month = stats.today() - dt.timedelta(days=40)
    report = reports.usage(company_id, last_month, last_month + dt.timedelta(days=5))
    assert report["residents"]["with_consent"] == 0
    assert report["claims"] == [] and report["touch_events"]["total"] == 0


def test_consent_given_before_the_period_counts_while_in_force(app):
    """Test that a consent given last month and still in force counts for this month."""
    factories.resident()
    with freeze_time(utcnow() - dt.timedelta(days=35)):
        rp = factories.rp()
        resident = db.session.scalar(db.select(factories.accounts.Resident))
        consent_service.grant(resident, clients.get_client(rp.client_id), ["openid"],
                              ["openid"])
        db.session.commit()
    today = stats.today()
    report = reports.usage(rp.company_id, today - dt.timedelta(days=3), today)
    assert report["residents"]["with_consent"] == 1
    assert report["residents"]["consents_given"] == 0


def test_cli_json_and_csv(activity, cli):
    """Test `idp report usage --format json|csv` and that producing a report is audited."""
    company_id, *_ = activity
    today = stats.today().isoformat()
    result = cli("report", "usage", "--company", company_id, "--from", today, "--to", today,
                 "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["residents"]["with_consent"] == 2 and data["company"]["id"] == company_id
    result = cli("report", "usage", "--company", company_id, "--from", today, "--to", today)
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == reports.CSV_HEADER
    assert ["residents", "", "", "with_consent", "2"] in rows
    assert ["claims", "", "email", "releases", "3"] in rows
    assert [e.data["format"] for e in events("report:usage")] == ["json", "csv"]


@pytest.mark.parametrize(("args", "message"), [
    (["--company", "co_NOPE", "--from", "2026-11-01", "--to", "2026-11-30"], "no company"),
    (["--company", "{company}", "--from", "2026-11-30", "--to", "2026-11-01"], "ends before"),
    (["--company", "{company}", "--from", "2025-01-01", "--to", "2026-11-30"], "at most 366"),
])
def test_cli_refusals(app, cli, args, message):
    """Test clear refusals: unknown company, reversed or too long period; audited."""
    company_id = factories.company()
    result = cli("report", "usage", *[a.format(company=company_id) for a in args])
    assert result.exit_code == 1 and message in result.output
    assert events("cli:command:refused")[0].data["command"] == "report usage"


def test_console_report_and_download(activity, client):
    """Test the console page and the CSV download (audited with the admin)."""
    company_id, *_ = activity
    admin = enrolled_admin()
    browser = AdminBrowser(client, admin)
    browser.login()
    today = stats.today().isoformat()
    path = f"/admin/reports?company={company_id}&from={today}&to={today}"
    page = client.get(path)
    assert page.status_code == 200 and "CONS-2026-001" in page.text
    response = browser.form(path, "/admin/reports/download", company=company_id, format="csv",
                            **{"from": today, "to": today})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].endswith(f'{today}-{today}.csv"')
    assert ["residents", "", "", "with_consent", "2"] in list(csv.reader(io.StringIO(
        response.text)))
    (event,) = events("report:usage")
    assert event.admin_id == admin.id and event.company_id == company_id
    bad = client.get("/admin/reports", query_string={"company": company_id, "from": "x"})
    assert bad.status_code == 400


def test_csv_neutralises_formulas(app):
    """Test that a company name starting with '=' cannot run as a spreadsheet formula."""
    company_id = factories.company("=HYPERLINK(\"http://evil\")")
    today = stats.today()
    text = reports.to_csv(reports.usage(company_id, today, today))
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
