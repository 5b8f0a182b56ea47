"""One name for each thing (docs/glossary.md): the Japanese catalog's msgstrs and the
Japanese written into templates use the glossary's terms, never a banned synonym."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from idp.config import ROOT

PO = ROOT / "consent_ui" / "translations" / "ja" / "LC_MESSAGES" / "messages.po"
TEMPLATES = ROOT / "consent_ui" / "templates"

# Banned synonym → the glossary's term (docs/glossary.md).
BANNED = {
    "ユーザーID": "コンソーシアムID",
    "ユーザID": "コンソーシアムID",
    "統合ID": "コンソーシアムID",
    "参加企業": "会員企業",
    "加盟": "会員企業",
    "当社": "the company's or the consortium's name",
    "推進体制": "コンソーシアム (the consortium's own name comes from %(consortium)s)",
    "キオスク": "サイネージ端末",
    "デジタルサイネージ": "サイネージ端末",
    "撤回": "取り消し",
    "お客様": "あなた",
}
PATTERN = re.compile("|".join(map(re.escape, BANNED)))

# (msgid or template path, word): quoted draft-terms text that must keep its own word.
# Empty today: the consent screen names the consortium through %(consortium)s.
ALLOWED: set[tuple[str, str]] = set()


def banned_in(text: str, where: str) -> list[str]:
    return [f"{where}: {word} (say {BANNED[word]})" for word in PATTERN.findall(text)
            if (where, word) not in ALLOWED]


def test_ja_catalog_uses_the_glossary():
    """Test that no Japanese msgstr uses a banned synonym."""
    with PO.open("rb") as handle:
        catalog = read_po(handle, locale="ja")
    found = []
    for message in catalog:
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        strings = [message.string] if isinstance(message.string, str) else message.string
        for text in strings:
            found += banned_in(text or "", msgid)
    assert found == []


def test_templates_use_the_glossary():
    """Test that no template writes a banned synonym in its own Japanese text."""
    found = []
    for path in sorted(TEMPLATES.rglob("*")):
        if path.suffix in (".html", ".txt"):
            found += banned_in(path.read_text(encoding="utf-8"),
                               str(path.relative_to(ROOT)))
    assert found == []


@pytest.mark.parametrize("text", ["ユーザーIDでログイン", "参加企業の一覧", "当社が保管している",
                                  "推進体制の窓口", "デジタルサイネージ", "同意を撤回する"])
def test_banned_synonyms_are_caught(text):
    """Test that the check finds each kind of banned synonym."""
    assert banned_in(text, "sample")


# The English side of the glossary: the msgids are the English pages.
BANNED_EN = {
    "user ID": "consortium ID, or the ID a company knows you by",
    "digital signage": "signage kiosk",
    "participating compan": "member company",
}
PATTERN_EN = re.compile("|".join(map(re.escape, BANNED_EN)), re.IGNORECASE)


def test_english_msgids_use_the_glossary():
    """Test that no English msgid (what English pages show) uses a banned synonym."""
    pot = ROOT / "consent_ui" / "translations" / "messages.pot"
    with pot.open("rb") as handle:
        catalog = read_po(handle)
    found = []
    for message in catalog:
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        for text in ids:
            found += [f"{text}: {word}" for word in PATTERN_EN.findall(text or "")]
    assert found == []


CONSORTIUM_NAME = "札幌都心版データプラットフォーム民間推進体制"
QUOTED = re.compile(r"「[^」]*」")


def test_japanese_written_in_python_uses_the_glossary():
    """Test that Japanese text kept in Python (the transparency page's entries, the demo's
    contract purposes) uses no banned synonym either."""
    found = []
    for path in sorted((ROOT / "idp").rglob("*.py")):
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            # The consortium's configured name is a name, and 「…」 quotes the seed documents.
            text = QUOTED.sub("", line.replace(CONSORTIUM_NAME, ""))
            found += banned_in(text, f"{path.relative_to(ROOT)}:{number}")
    assert found == []
