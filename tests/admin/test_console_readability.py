"""The console read on a tablet and a phone (issue 15, item 8): charts whose text stays
readable and whose lines can be told apart without colour; the audit table with names,
short ids, a summary of the details and the raw JSON folded away."""

from __future__ import annotations

import re

import pytest

from idp.admin import charts
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.extensions import db
from tests import factories
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin


@pytest.fixture
def browser(client):
    browser = AdminBrowser(client, enrolled_admin())
    assert browser.login().status_code == 303
    return browser


def test_chart_text_is_readable_when_the_chart_is_phone_wide(app):
    """Test that every text is at least 14 units in a 400-unit drawing: 11 px or more
    when the chart is 320 px wide or more."""
    for svg in (charts.lines("T", "D", [f"12-{d:02d}" for d in range(1, 31)],
                             [("A社", list(range(30))), ("B社", [3] * 30)], "data"),
                charts.bars("T", "D", ["a", "b"], [("x", [1, 2])], "data"),
                charts.heatmap("T", "D", [("札幌駅前サイネージ", [1] * 24)], "data", "K")):
        width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))
        sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', svg)]
        assert sizes and min(sizes) * 320 / width >= 11


def test_lines_differ_by_dash_and_marker_and_have_a_legend(app):
    """Test that two equal series (one hidden under the other) still show both: different
    dash patterns, markers on different days, and a legend drawing each style."""
    svg = charts.lines("T", "D", [str(d) for d in range(30)],
                       [("A社", [5] * 30), ("B社", [5] * 30)], "data")
    polylines = re.findall(r"<polyline[^>]*>", svg)
    assert len(polylines) == 2
    assert "stroke-dasharray" not in polylines[0] and 'stroke-dasharray="7 4"' in polylines[1]
    a, b = svg.split("<g>")[1:3]
    a_marks = set(re.findall(r'<circle cx="([\d.]+)"', a))
    b_marks = set(re.findall(r'<rect x="([\d.]+)"', b))
    assert a_marks and b_marks
    legend = svg[svg.index('class="chart-legend"'):]
    assert "A社" in legend and "B社" in legend and "stroke-dasharray" in legend


def test_dashboard_has_no_fixed_width_wider_than_a_phone(browser):
    """Test that the charts' column is not a fixed 28rem (wider than a 375 px screen)."""
    css = browser.client.get("/static/admin.css").text
    assert "minmax(28rem" not in css and "minmax(min(100%, 28rem)" in css


def test_company_page_heads_the_name_as_company_name(browser):
    company_id = factories.company("A社")
    page = browser.client.get(f"/admin/companies/{company_id}").text
    assert "会社名" in page and "<h2 id=\"edit-h\">氏名</h2>" not in page


def test_audit_shows_names_short_ids_a_summary_and_raw_json(browser):
    """Test that an event shows the company's and the client's names (the ids in titles),
    a resident id shortened with the full one in the title, a readable summary and the
    raw JSON inside <details>."""
    rp = factories.rp(factories.company("A社"))
    resident = factories.resident()
    record(AuditTag.CONSENT_GRANT, resident_id=resident.id, client_id=rp.client_id,
           company_id=rp.company_id, scopes=["openid", "name"], terms_version="2026-04")
    db.session.commit()
    page = browser.client.get("/admin/audit").text
    at = page.index("<code>consent:grant</code>")
    row = page[page.rindex("<tr>", 0, at):page.index("</tr>", at)]
    assert f'title="{rp.company_id}">A社</a>' in row
    assert f'title="{rp.client_id}">XXXサービス</span>' in row
    assert f'title="{resident.id}">{resident.id[:11]}…</code>' in row
    assert "scopes:</span> openid, name" in row
    assert "<details class=\"raw\">" in row and "&#34;terms_version&#34;" in row
