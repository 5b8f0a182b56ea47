"""The terms of use and the registration form in a real browser, on a phone (375×812) and a
desktop (1280×800), in Japanese and English: readable without horizontal scrolling, a table of
contents that works, the municipality filled in from the postal code under the CSP, named
errors, and axe-core with no serious or critical violation.

Viewport screenshots of the terms page are kept in artifacts/screenshots/terms/ (committed).
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser.conftest import AXE
from tests.e2e.browser.conftest import ROOT
from tests.e2e.browser.conftest import axe_check

pytestmark = pytest.mark.skipif(not AXE.exists(), reason=(
    "axe-core is not installed: npm ci --prefix tests/e2e/browser"))

VIEWPORTS = {
    "phone": {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
KEPT = ROOT / "artifacts" / "screenshots" / "terms"


def open_context(browser, lang: str, size: str, **extra):
    context = browser.new_context(locale="ja-JP" if lang == "ja" else "en-US",
                                  **VIEWPORTS[size], **extra)
    context.set_default_timeout(15_000)
    return context


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.mark.parametrize("size", ["phone", "desktop"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_terms_page_is_readable(lang, size, browser, idp):
    """Test /terms: full text with contents, no horizontal scroll, working anchors, axe clean."""
    context = open_context(browser, lang, size, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{idp}/lang/{lang}?next=/terms")
        page.wait_for_url(re.compile(r"/terms$"))
        assert page.locator("html").get_attribute("lang") == lang
        KEPT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(KEPT / f"{lang}-{size}.png"))
        assert no_horizontal_scroll(page)
        toc = page.locator("nav.terms-toc a")
        assert toc.count() == 16
        heading = "第10条" if lang == "ja" else "Article 10"
        page.locator("nav.terms-toc a", has_text=heading).click()
        page.wait_for_url(re.compile(r"#article-10$"))
        assert page.locator("#article-10 h3").is_visible()
        if size == "phone":
            page.screenshot(path=str(KEPT / f"{lang}-{size}-article-10.png"))
        assert page.locator(".terms-version-list li").count() >= 1
        found = axe_check(page, f"{lang} {size} terms")
        assert found == [], found
        page.goto(f"{idp}/terms/unknown-version")
        assert page.locator("h1").is_visible()
    finally:
        context.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_registration_form_on_both_viewports(lang, size, browser, idp):
    """Test the registration story: opaque link, postal code → municipality under the CSP,
    named errors, no horizontal scroll, the terms link, and axe on each page."""
    email = f"newcomer-{lang}-{size}@example.jp"
    context = open_context(browser, lang, size)
    page = context.new_page()
    axe_context = open_context(browser, lang, size, bypass_csp=True)
    axe_page = axe_context.new_page()
    try:
        page.goto(f"{idp}/lang/{lang}?next=/register")
        page.locator("#email").fill(email)
        page.locator("form.form button[type=submit]").click()
        page.wait_for_load_state()
        assert "127.0.0.1" in page.locator("main").inner_text()  # the sending domain is named
        assert no_horizontal_scroll(page)

        page.goto(f"{idp}/dev/outbox/")
        page.locator("ul.cards a").first.click()
        link = page.locator("main ul a").first.get_attribute("href")
        assert "/register/complete?token=" in link and email not in link

        page.goto(link)
        assert no_horizontal_scroll(page)
        terms_link = page.locator(".terms-clauses a[href='/terms']")
        assert terms_link.count() == 1 and terms_link.get_attribute("target") == "_blank"
        page.locator("#postal_code").fill("０６０－００４２")
        page.wait_for_function(
            "() => document.getElementById('locality').value === '札幌市中央区'")
        assert page.locator("#postal-lookup").inner_text() != ""
        page.locator("#password").fill("short")
        page.locator("#password_confirm").fill("different")
        page.locator("form.form button[type=submit]").last.click()
        page.wait_for_load_state()
        summary = page.locator("#form-errors").inner_text()
        assert "#password_confirm" in page.locator("#form-errors").inner_html()
        assert summary.count("\n") >= 4  # password, confirmation and three named agreements
        assert no_horizontal_scroll(page)

        for url in (f"{idp}/register", link):
            axe_page.goto(f"{idp}/lang/{lang}?next=/register")
            axe_page.goto(url)
            assert axe_page.locator("html").get_attribute("lang") == lang
            found = axe_check(axe_page, f"{lang} {size} {url}")
            assert found == [], found
    finally:
        axe_context.close()
        context.close()
