"""Published operation statistics (seed 003): a month of platform use, de-identified
(idp.citydata.operations; docs/city-export.md)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from freezegun import freeze_time

from idp.audit.tags import AuditTag
from idp.citydata import operations
from idp.exchange.models import MonitoringAlert
from idp.extensions import db
from idp.outbox.models import DEAD
from idp.outbox.models import OutboxMessage
from tests import factories
from tests.helpers import data_links
from tests.helpers.citydata import MID_NOVEMBER
from tests.helpers.citydata import events


@pytest.fixture
def companies(app):
    return {name: factories.company(name) for name in ("A社", "B社", "C社")}


def test_sign_ins_need_k_events_and_k_residents(app):
    """Test that sign-ins are published from k residents, and one resident signing in
    often is not a publishable number."""
    events(AuditTag.LOGIN_SUCCESS, 12)
    assert operations.summary("2026-11")["measures"]["sign_ins"]["total"] == 12


def test_one_resident_is_never_a_cell(app):
    """Test that twelve sign-ins of one resident read "<10": a number about one person."""
    events(AuditTag.LOGIN_SUCCESS, 12, resident="rsame")
    assert operations.summary("2026-11")["measures"]["sign_ins"]["total"] == "<10"


def test_consents_per_company_with_complementary_suppression(companies):
    """Test that small companies read "<k", and the next smallest is hidden with them so
    the total minus the published ones is not the small one."""
    events(AuditTag.CONSENT_GRANT, 12, company_id=companies["A社"])
    events(AuditTag.CONSENT_GRANT, 3, company_id=companies["B社"])
    events(AuditTag.CONSENT_GRANT, 11, company_id=companies["C社"])
    granted = operations.summary("2026-11")["measures"]["consents_granted"]
    assert granted == {"total": 26, "breakdown": {"A社": 12, "B社": "<10", "C社": "<10"}}


def test_withdrawals_releases_contributions_and_incidents(companies):
    """Test the other measures: withdrawals per company, releases and contributions per
    category, incidents per kind."""
    events(AuditTag.CONSENT_CHANGE, 10, company_id=companies["A社"], withdrawn=True)
    events(AuditTag.CONSENT_CHANGE, 10, company_id=companies["A社"], scopes=["openid"])
    events(AuditTag.RECORD_RELEASE, 10, company_id=companies["B社"],
           categories=["language", "occupation"])
    source = data_links.setup_source(keys=("language",))
    with freeze_time(MID_NOVEMBER):
        for n, resident in enumerate(factories.resident(f"c{n}@example.jp") for n in range(10)):
            data_links.contribute(resident.id, source.company_id, source.contract_id, "ja",
                                  record_id=f"c{n}")
        for _ in range(10):
            db.session.add(OutboxMessage(kind="logout_token", target="https://rp.example",
                                         dedupe_key=factories.token(8), status=DEAD))
        db.session.add(MonitoringAlert(rule="volume", window_start=dt.datetime.now(dt.UTC),
                                       window_end=dt.datetime.now(dt.UTC), evidence={}))
        db.session.flush()
    db.session.commit()
    measures = operations.summary("2026-11")["measures"]
    assert measures["consents_withdrawn"] == {"total": 10, "breakdown": {"A社": 10}}
    assert measures["releases"]["breakdown"] == {"language": 10, "occupation": 10}
    assert measures["contributions"] == {"total": 10, "breakdown": {"language": 10}}
    # One alert is hidden; ten dead letters would then give it away (11 - 10): hidden too.
    assert measures["incidents"] == {"total": 11, "breakdown": {
        "dead_letter:logout_token": "<10", "monitoring:volume": "<10"}}


def test_other_months_do_not_count(app):
    """Test that events outside the month (Japan time) are not counted."""
    events(AuditTag.LOGIN_SUCCESS, 12)
    assert operations.summary("2026-10")["measures"]["sign_ins"]["total"] == "<10"


@pytest.mark.parametrize(("month", "k"), [("2026-13", None), ("11/2026", None),
                                          ("2099-01", None), ("2026-11", 5)])
def test_bad_month_or_k_is_refused(app, month, k):
    """Test that a malformed or unclosed month and a k below the floor are refused."""
    with pytest.raises(operations.OperationsError):
        operations.summary(month, k)


def test_cli_json_and_csv(cli, app):
    """Test `idp report operations --month --format`."""
    events(AuditTag.LOGIN_SUCCESS, 12)
    result = cli("report", "operations", "--month", "2026-11", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["k"] == 10 and data["measures"]["sign_ins"]["total"] == 12
    result = cli("report", "operations", "--month", "2026-11")
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == ["month", "measure", "breakdown", "count"]
    assert ["2026-11", "sign_ins", "", "12"] in rows
    result = cli("report", "operations", "--month", "2099-01")
    assert result.exit_code == 1 and "closed months" in result.output
