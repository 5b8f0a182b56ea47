"""docs/operations.md exists, the README links it, and what it points to is there: the
files it links, the headings its own links name, the tests and deploy files it cites."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "operations.md"
# Written by the metrics work on its own branch; checked like the others once it is here.
ARRIVING = {"metrics.md"}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")}


def test_the_readme_links_the_operations_doc():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/operations.md)" in readme
    assert "](operations.md)" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")


def test_every_link_of_the_operations_doc_resolves():
    text = DOC.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if link.startswith("http"):
            continue
        target, _, anchor = link.partition("#")
        path = (DOC.parent / target).resolve() if target else DOC
        if target in ARRIVING and not path.exists():
            continue
        assert path.exists(), link
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), link


def test_the_files_it_cites_exist():
    text = DOC.read_text(encoding="utf-8")
    cited = set(re.findall(r"`((?:tests|deploy|idp)/[\w/.]+\.(?:py|yml|json))`", text))
    assert {"tests/e2e/test_backup_restore.py", "tests/e2e/test_mixed_versions.py",
            "deploy/prometheus/alerts.test.yml"} <= cited
    for path in cited:
        assert (ROOT / path).is_file(), path
