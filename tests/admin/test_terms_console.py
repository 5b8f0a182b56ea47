"""Publishing terms versions in the console: full text and a change summary in both languages."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.terms import document
from idp.terms import service as terms
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.admin import hidden

TEXT = "## 第1条（目的）\n1. 改定した目的です。\n"
TEXT_EN = "## Article 1 (Purpose)\n1. The revised purpose.\n"


@pytest.fixture
def browser(client, app):
    browser = AdminBrowser(client, enrolled_admin())
    assert browser.login().status_code == 303
    return browser


def test_console_form_starts_from_the_newest_text(browser):
    """Test that the publish form is filled with the text in force, for editing."""
    page = browser.client.get("/admin/terms")
    assert page.status_code == 200
    assert "第10条（まちなかデータベースと統計）" in page.text
    assert "Article 10 (The downtown database and statistics)" in page.text
    assert 'href="/terms"' in page.text


def test_console_publishes_text_and_summaries(browser, client):
    """Test that a version published with its text is what residents read at /terms."""
    response = browser.form("/admin/terms", "/admin/terms", version="2027-01", text=TEXT,
                            text_en=TEXT_EN, summary="第1条を改定", summary_en="Article 1 revised")
    assert response.status_code == 303
    db.session.rollback()
    current = terms.current()
    assert (current.version, current.text, current.text_en) == ("2027-01", TEXT.strip(),
                                                                 TEXT_EN.strip())
    page = client.application.test_client().get("/terms")
    assert "改定した目的です。" in page.text and "第1条を改定" in page.text


@pytest.mark.parametrize("missing", ["summary", "summary_en"])
def test_console_refuses_a_version_without_change_summary(browser, missing):
    """Test that publishing without the summary of changes (either language) is refused and audited."""
    fields = {"version": "2027-01", "text": TEXT, "text_en": TEXT_EN, "summary": "第1条を改定",
              "summary_en": "Article 1 revised"}
    fields[missing] = ""
    response = browser.form("/admin/terms", "/admin/terms", **fields)
    assert response.status_code == 303
    db.session.rollback()
    assert terms.versions() == []
    assert events("admin:action:refused")[0].data["action"] == "terms:publish"
    assert "what changed" in browser.client.get("/admin/terms").text


def test_console_publish_without_csrf_is_refused(browser):
    """Test that a forged publication (no CSRF token) changes nothing."""
    page = browser.client.get("/admin/terms")
    response = browser.client.post("/admin/terms", data={
        "form_token": hidden(page.text, "form_token", "/admin/terms"), "version": "2027-01",
        "summary": "改定", "summary_en": "Revised", "text": TEXT, "text_en": TEXT_EN})
    assert response.status_code == 400
    db.session.rollback()
    assert terms.versions() == []


def test_cli_publishes_text_files_and_shows_them(cli, app, tmp_path):
    """Test `idp terms publish --text/--text-en` and `idp terms show`."""
    ja, en = tmp_path / "ja.md", tmp_path / "en.md"
    ja.write_text(TEXT, "utf-8")
    en.write_text(TEXT_EN, "utf-8")
    result = cli("terms", "publish", "--version", "2027-01", "--summary", "改定",
                 "--summary-en", "Revised", "--text", str(ja), "--text-en", str(en))
    assert result.exit_code == 0, result.output
    assert "改定した目的です。" in cli("terms", "show").output
    assert "The revised purpose." in cli("terms", "show", "--en").output
    assert "第16条" in cli("terms", "show", "--version", "2026-04").output
    assert cli("terms", "show", "--version", "nope").exit_code == 1
    missing = cli("terms", "publish", "--version", "2027-02", "--summary-en", "Revised")
    assert missing.exit_code == 2 and "--summary" in missing.output


def test_shipped_text_is_valid(app):
    assert document.problems(document.bundled("ja")) == []
    assert document.problems(document.bundled("en")) == []
