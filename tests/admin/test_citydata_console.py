"""The console's city data page: the export and the operation statistics, downloaded
(idp/admin/views/citydata.py)."""

from __future__ import annotations

import csv
import io
import json

from idp.audit.tags import AuditTag
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.citydata import events as audit_events
from tests.helpers.citydata import residents
from tests.helpers.citydata import touch

PAGE = "/admin/city-data"


def signed_in(client):
    admin = enrolled_admin()
    browser = AdminBrowser(client, admin)
    browser.login()
    return admin, browser


def test_export_download_csv_and_json(client, kiosk_id):  # noqa: F811
    """Test that an admin downloads the export in both formats, audited with them."""
    touch(kiosk_id, residents(10))
    admin, browser = signed_in(client)
    response = browser.form(PAGE, "/admin/city-data/export", format="csv",
                            granularity="day", **{"from": "2026-11-20", "to": "2026-11-20"})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == \
        'attachment; filename="machi-id-city-day-2026-11-20-2026-11-20.csv"'
    rows = list(csv.reader(io.StringIO(response.text)))
    assert ["北2条広場", "2026-11-20", "residents", "gender", "female", "10"] in rows
    response = browser.form(PAGE, "/admin/city-data/export", format="json", k="11",
                            granularity="day", **{"from": "2026-11-20", "to": "2026-11-20"})
    data = json.loads(response.text)
    assert data["k"] == 11 and data["cells"][0]["residents"] is None
    first, second = events(AuditTag.CITY_EXPORT)
    assert first.admin_id == admin.id and second.data["k"] == 11


def test_export_refusals_are_flashed_not_500(client, app):
    """Test that a bad window or k is refused with a message (and audited)."""
    _, browser = signed_in(client)
    for fields in [{"from": "x", "to": "2026-11-20"},
                   {"from": "2026-11-20", "to": "2026-11-20", "k": "3"},
                   {"from": "2026-11-20", "to": "2026-11-20", "k": "abc"},
                   {"from": "2026-11-17", "to": "2026-11-23", "granularity": "week"}]:
        response = browser.form(PAGE, "/admin/city-data/export", **fields)
        assert response.status_code == 303
    assert len(events(AuditTag.ADMIN_REFUSED)) == 4
    assert events(AuditTag.CITY_EXPORT) == []


def test_operations_shown_and_published(client, app):
    """Test that the page shows a month's statistics (not audited) and publishing them
    downloads CSV or JSON (audited)."""
    audit_events(AuditTag.LOGIN_SUCCESS, 12)
    _, browser = signed_in(client)
    page = client.get(PAGE, query_string={"month": "2026-11"})
    assert page.status_code == 200 and "sign_ins" in page.text
    assert events(AuditTag.REPORT_OPERATIONS) == []
    response = browser.form(f"{PAGE}?month=2026-11", "/admin/city-data/operations",
                            month="2026-11", format="json")
    assert response.status_code == 200
    assert json.loads(response.text)["measures"]["sign_ins"]["total"] == 12
    response = browser.form(f"{PAGE}?month=2026-11", "/admin/city-data/operations",
                            month="2026-11", format="csv")
    assert response.headers["Content-Disposition"].endswith('operations-2026-11.csv"')
    assert len(events(AuditTag.REPORT_OPERATIONS)) == 2
    assert client.get(PAGE, query_string={"month": "2099-01"}).status_code == 400
