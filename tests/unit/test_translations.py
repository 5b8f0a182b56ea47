"""The message catalogs: compiled files current, Japanese complete, nothing fuzzy."""

from __future__ import annotations

import gettext
import io
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from idp.config import ROOT

TRANSLATIONS = ROOT / "consent_ui" / "translations"
LOCALES = ("ja", "en")
# The keywords of the extraction command in consent_ui/translations/README.md.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}


def read_catalog(path: Path, locale: str | None = None):
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def messages(translations: gettext.GNUTranslations) -> dict:
    """The catalog's translations without the header entry."""
    return {k: v for k, v in translations._catalog.items() if k != ""}


def msgid(message) -> str:
    return message.id if isinstance(message.id, str) else message.id[0]


def pot_ids() -> set[str]:
    return {msgid(m) for m in read_catalog(TRANSLATIONS / "messages.pot") if m.id}


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalog_matches_its_po_file(locale):
    """Test that messages.mo holds exactly what compiling messages.po gives now."""
    compiled = io.BytesIO()
    write_mo(compiled, read_catalog(po_path(locale), locale))
    compiled.seek(0)
    expected = gettext.GNUTranslations(compiled)
    with (po_path(locale).parent / "messages.mo").open("rb") as handle:
        committed = gettext.GNUTranslations(handle)
    assert messages(committed) == messages(expected)


@pytest.mark.parametrize("locale", LOCALES)
def test_po_file_has_every_template_msgid(locale):
    """Test that each catalog has an entry for every msgid of messages.pot."""
    ids = {msgid(m) for m in read_catalog(po_path(locale), locale) if m.id}
    assert pot_ids() - ids == set()


def test_every_msgid_has_a_japanese_translation():
    """Test that every msgid of messages.pot has a non-empty Japanese msgstr."""
    catalog = read_catalog(po_path("ja"), "ja")
    missing = []
    for message_id in sorted(pot_ids()):
        message = catalog.get(message_id)
        strings = [] if message is None else (
            [message.string] if isinstance(message.string, str) else list(message.string))
        if not strings or not all(strings):
            missing.append(message_id)
    assert missing == []


@pytest.mark.parametrize("locale", LOCALES)
def test_no_entry_is_fuzzy(locale):
    """Test that no catalog entry is marked fuzzy (fuzzy entries are not compiled)."""
    fuzzy = [msgid(m) for m in read_catalog(po_path(locale), locale) if m.id and m.fuzzy]
    assert fuzzy == []


def test_japanese_translations_keep_their_placeholders():
    """Test that every Japanese msgstr passes Babel's checks (same %(name)s placeholders)."""
    problems = [(msgid(m), [str(e) for e in errors])
                for m, errors in read_catalog(po_path("ja"), "ja").check()]
    assert problems == []


def test_template_is_current_with_the_sources():
    """Test that messages.pot holds exactly the msgids extracted from the code and templates."""
    method_map, options_map = parse_mapping_cfg(
        io.StringIO((ROOT / "babel.cfg").read_text(encoding="utf-8")))
    extracted = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map,
                                                    keywords=KEYWORDS)
    }
    assert extracted == pot_ids()
