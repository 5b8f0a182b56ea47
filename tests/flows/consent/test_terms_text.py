"""The terms' full text: readable at /terms and /terms/<version> in ja and en, published with a
change summary, and linked wherever agreement is asked."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from freezegun import freeze_time

from idp.db import utcnow
from idp.extensions import db
from idp.terms import document
from idp.terms import service as terms
from tests import factories
from tests.helpers.accounts import registration_link
from tests.helpers.accounts import request_link
from tests.helpers.accounts import sign_in
from tests.helpers.oauth import consent_screen

NEW_TEXT = "# 新しい利用規約\n\n## 第1条（目的）\n1. 新しい目的です。\n- 箇条書き\n\n## 第2条（準拠法）\n日本法に準拠します。\n"
NEW_TEXT_EN = "# New terms\n\n## Article 1 (Purpose)\n1. A new purpose.\n\n## Article 2 (Law)\nJapanese law.\n"


def publish(version="2027-01", **kwargs):
    row = terms.publish_terms(version, summary=kwargs.pop("summary", "第1条を変更しました。"),
                              summary_en=kwargs.pop("summary_en", "Article 1 changed."),
                              **kwargs)
    db.session.commit()
    return row


def test_current_terms_page_shows_the_full_text_with_contents(client):
    """Test that /terms shows the shipped text in Japanese: headings, a table of contents, no 'ask us'."""
    page = client.get("/terms")
    assert page.status_code == 200
    assert '<nav class="terms-toc"' in page.text
    assert 'href="#article-1"' in page.text and 'id="article-16"' in page.text
    assert "第10条（まちなかデータベースと統計）" in page.text
    assert "お問い合わせください" not in page.text.split('id="terms-text"')[0]
    assert "札幌都心版データプラットフォーム民間推進体制" in page.text  # {consortium} filled in
    assert "{consortium}" not in page.text and "{contact}" not in page.text


def test_terms_page_in_english(client):
    """Test that the English page shows the English text."""
    client.get("/lang/en?next=/terms")
    page = client.get("/terms")
    assert "Article 10 (The downtown database and statistics)" in page.text
    assert "Sapporo Downtown Data Platform Consortium" in page.text
    assert "Contents" in page.text


def test_terms_contact_setting_is_named_in_the_text(app, client):
    """Test that the terms_contact setting fills in the contact article."""
    from idp import config
    settings = config.settings()
    original = settings.terms_contact
    object.__setattr__(settings, "terms_contact", "info@consortium.example.jp")
    try:
        assert "info@consortium.example.jp" in client.get("/terms").text
    finally:
        object.__setattr__(settings, "terms_contact", original)


def test_each_version_stays_readable_as_published(client):
    """Test that an older version is shown with its own text, and the list links to it with summaries."""
    with freeze_time(utcnow() - dt.timedelta(days=2)):
        publish("2026-10", text=NEW_TEXT, text_en=NEW_TEXT_EN, summary="初版の改定",
                summary_en="First revision")
    publish("2027-01")  # no text: carries the text of 2026-10 unchanged
    current = client.get("/terms")
    assert "2027-01" in current.text and "新しい目的です。" in current.text
    assert 'href="/terms/2026-10"' in current.text
    assert 'href="/terms/2026-04"' in current.text  # the settings' version, shipped text
    assert "初版の改定" in current.text and "第1条を変更しました。" in current.text
    old = client.get("/terms/2026-10")
    assert old.status_code == 200
    assert "新しい目的です。" in old.text and "現在は適用されていません" in old.text
    first = client.get("/terms/2026-04")
    assert "第10条（まちなかデータベースと統計）" in first.text
    client.get("/lang/en?next=/terms")
    assert "A new purpose." in client.get("/terms/2026-10").text
    assert client.get("/terms/2027-01").headers["Location"].endswith("/terms")


@pytest.mark.parametrize("version", ["2099-99", "nope", "..", "x" * 41, "%3Cscript%3E"])
def test_unknown_version_is_a_404_page(client, version):
    """Test that an unknown or malformed version is the 404 page, never a 500."""
    page = client.get(f"/terms/{version}")
    assert page.status_code == 404
    assert "<html" in page.text


def test_scheduled_version_is_not_readable_before_it_takes_effect(client):
    """Test that a version not yet in effect is not listed nor readable."""
    publish("2099-01", effective_at=utcnow() + dt.timedelta(days=30))
    assert client.get("/terms/2099-01").status_code == 404
    assert "2099-01" not in client.get("/terms").text


def test_publishing_without_a_change_summary_is_refused(app):
    """Test that the summary of changes is required in both languages."""
    for summary, summary_en in (("", "Changed"), ("変更", ""), ("  ", "  ")):
        with pytest.raises(terms.TermsError, match="what changed"):
            terms.publish_terms("2027-05", summary=summary, summary_en=summary_en)
    assert terms.versions() == []


def test_publishing_a_text_without_articles_is_refused(app):
    """Test that a text with no '## ' article cannot be published."""
    with pytest.raises(terms.TermsError, match="article"):
        terms.publish_terms("2027-05", summary="変更", summary_en="Changed",
                            text="見出しのない本文", text_en=NEW_TEXT_EN)


def test_text_is_escaped_not_markup(client):
    """Test that a published text cannot carry HTML into the page."""
    publish(text="## 第1条\n<script>alert(1)</script>", text_en=NEW_TEXT_EN)
    page = client.get("/terms")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_re_acceptance_page_shows_the_text_and_the_form(client):
    """Test that a resident asked to agree again reads the summary and full text above the form."""
    factories.resident()
    publish(text=NEW_TEXT, text_en=NEW_TEXT_EN)
    location = sign_in(client).headers["Location"]
    page = client.get(location)
    assert page.status_code == 200
    assert "第1条を変更しました。" in page.text and "新しい目的です。" in page.text
    assert page.text.index('id="terms-text"') < page.text.index('value="accept"')
    assert 'href="#terms-text"' in page.text


def test_registration_form_links_the_full_terms(client):
    """Test that the registration form links to the terms page of the version it asks about."""
    request_link(client)
    page = client.get(registration_link())
    assert 'href="/terms"' in page.text
    assert "お問い合わせください" not in page.text


def test_document_parser_reads_articles_paragraphs_and_bullets():
    """Test the text format: title, preamble, articles, numbered paragraphs and bullets."""
    parsed = document.parse("# T\n\n前文\n\n## 第1条\n1. 一\n- a\n- b\n2. 二\n\n段落\n- 単独\n")
    assert parsed.title == "T" and [p.text for p in parsed.preamble] == ["前文"]
    (article,) = parsed.articles
    assert article.anchor == "article-1" and article.heading == "第1条"
    assert [(p.number, p.text, p.bullets) for p in article.paragraphs] == [
        ("1", "一", ["a", "b"]), ("2", "二", []), (None, "段落", []), (None, "", ["単独"])]
    assert document.problems("") == ["empty"]
    assert document.problems("no heading") == ["no_articles"]
    assert document.problems("## x\n" + "a" * document.MAX_TEXT) == ["too_long"]


def test_shipped_texts_have_the_same_articles():
    """Test that the Japanese and English shipped texts have the same number of articles."""
    ja, en = (document.parse(document.bundled(lang)) for lang in ("ja", "en"))
    assert len(ja.articles) == len(en.articles) == 16
    assert [len(a.paragraphs) for a in ja.articles] == [len(a.paragraphs) for a in en.articles]


def test_consent_screen_links_the_terms_even_without_a_url_setting(app, client):
    """Test that the consent screen's terms line links to /terms (no admin URL needed)."""
    factories.resident()
    _, _, html = consent_screen(client, factories.rp(), "openid name")
    line = re.search(r'<a href="([^"]+)" target="_blank" rel="noopener">([^<]+)<', html.split(
        'class="links consent-links"')[1])
    assert line is not None and line.group(1) == "/terms"
    assert "利用規約" in line.group(2)
