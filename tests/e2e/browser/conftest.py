"""Real-browser tests: Playwright for Python driving Debian's Chromium, headless.

The browser is never downloaded: it is the system's ``/usr/bin/chromium``
(``apt-get install -y chromium``). The IdP is served on a loopback port
(``tests.helpers.live.serve``); the demo relying party (``demo.relying_party``) on
another one. Every page a test passes through is saved as
``artifacts/screenshots/<test-name>/NN-name.png`` (CI keeps that folder).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from idp.extensions import db
from tests import factories
from tests.helpers.live import serve
from tests.helpers.live import serve_wsgi

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

_skip = None
if sync_playwright is None:
    _skip = "playwright is not installed: .venv/bin/pip install -e '.[test,browser]'"
elif not CHROMIUM.exists():
    _skip = "/usr/bin/chromium is missing: apt-get install -y chromium"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            if _skip:
                item.add_marker(pytest.mark.skip(reason=_skip))


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


class Shots:
    """Numbered screenshots of one test: artifacts/screenshots/<test>/NN-name.png."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.n = 0
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, name: str) -> Path:
        self.n += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "page"
        path = self.folder / f"{self.n:02d}-{safe}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shot(request):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    return Shots(SCREENSHOTS / name)


def _new_page(browser, **context_args):
    context = browser.new_context(locale="ja-JP", **context_args)
    context.set_default_timeout(15_000)
    return context, context.new_page()


@pytest.fixture
def page(browser):
    """A fresh desktop-sized page in its own context (its own cookies)."""
    context, pg = _new_page(browser, viewport={"width": 1024, "height": 800})
    yield pg
    context.close()


@pytest.fixture
def phone(browser):
    """A phone: 375×812, touch, mobile user agent."""
    context, pg = _new_page(browser, viewport={"width": 375, "height": 812},
                            is_mobile=True, has_touch=True, device_scale_factor=2)
    yield pg
    context.close()


@pytest.fixture
def new_page(browser):
    """Open more pages, each in its own context (e.g. the admin's browser)."""
    contexts = []

    def make(**context_args):
        context, pg = _new_page(browser, **({"viewport": {"width": 1024, "height": 800}}
                                            | context_args))
        contexts.append(context)
        return pg

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def outbox(tmp_path):
    return tmp_path / "outbox"


@pytest.fixture
def idp(app, migrated, outbox):
    """The IdP on a loopback port (same database as the ``app`` fixture); yields its URL."""
    db.session.commit()
    with serve(migrated, outbox_dir=str(outbox), device_poll_interval=1) as base:
        yield base


class DemoRP:
    def __init__(self, base: str, client: factories.RP):
        self.base = base
        self.client = client


@pytest.fixture
def demo_rp(app, migrated, idp):
    """The demo relying party (A社 XXXサービス) on its own loopback port."""
    from demo.relying_party import create_app as create_rp

    company = factories.company("A社")
    holder: dict = {}

    def make(base):
        client = factories.rp(company, redirect_uris=[f"{base}/callback"],
                              post_logout_redirect_uris=[f"{base}/"],
                              policy_uri=f"{base}/", client_uri=f"{base}/")
        holder["client"] = client
        db.session.rollback()
        return create_rp(idp, client.client_id, client.client_secret, f"{base}/callback")

    with serve_wsgi(make) as base:
        yield DemoRP(base, holder["client"])


def claims_shown(page) -> dict[str, str]:
    """The claims table of the demo app: {claim: value}."""
    rows = page.locator("table tr").all()[1:]
    out = {}
    for row in rows:
        cells = row.locator("td").all_inner_texts()
        out[cells[0].strip()] = cells[2].strip()
    return out


def sign_in(page, email="hanako@example.jp", password=factories.PASSWORD):
    page.get_by_label(re.compile("メールアドレス|Email address")).fill(email)
    page.get_by_label(re.compile("^(パスワード|Password)$")).fill(password)
    page.locator("form.form button[type=submit]").first.click()


def axe_context(browser, **context_args):
    """A context for axe-core checks: the CSP bypassed so axe's script may run (for these
    checks only; the story tests keep the CSP), and that script evaluated in every
    document the context opens, sent to the browser once rather than at every check."""
    context = browser.new_context(bypass_csp=True, **context_args)
    context.set_default_timeout(15_000)
    context.add_init_script(path=str(AXE))
    return context


def axe_run(page, context_label: str) -> list[dict]:
    """Run axe-core on the page; return every violation (any impact), summarised."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))  # a context that is not an axe_context
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"where": context_label, "id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]} for v in result["violations"]]


def axe_check(page, context_label: str) -> list[dict]:
    """Serious and critical violations only."""
    return [v for v in axe_run(page, context_label) if v["impact"] in ("serious", "critical")]
