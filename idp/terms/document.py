"""The text of a terms version, read into articles a page can show.

The text is plain and line based, so an admin can write it in any editor and a
published version keeps exactly the characters that were accepted:

- ``# title`` (first line, optional) names the document;
- ``## heading`` starts an article (第1条（目的）);
- ``1. text`` is a numbered paragraph, ``- text`` a bullet under the paragraph
  before it (or on its own);
- any other line is a paragraph; blank lines separate paragraphs.

Nothing in the text is markup: the page escapes every character, so a version
cannot carry HTML or script. ``{consortium}`` and ``{contact}`` are filled in
from the settings when the page is drawn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

TEXT_DIR = Path(__file__).parent / "text"
LANGUAGES = ("ja", "en")
MAX_TEXT = 100_000
NUMBERED = re.compile(r"^(\d{1,3})\.\s+(.*)$")


@dataclass
class Paragraph:
    text: str
    number: str | None = None
    bullets: list[str] = field(default_factory=list)


@dataclass
class Article:
    anchor: str
    heading: str
    paragraphs: list[Paragraph] = field(default_factory=list)


@dataclass
class Document:
    title: str
    preamble: list[Paragraph]
    articles: list[Article]


def bundled(language: str) -> str:
    """The terms shipped with the product, in force until a version is published."""
    return (TEXT_DIR / f"{'en' if language == 'en' else 'ja'}.md").read_text("utf-8")


def fill(text: str, *, consortium: str, contact: str) -> str:
    return text.replace("{consortium}", consortium).replace("{contact}", contact)


def parse(text: str) -> Document:
    title = ""
    preamble: list[Paragraph] = []
    articles: list[Article] = []
    target = preamble
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("## "):
            articles.append(Article(anchor=f"article-{len(articles) + 1}",
                                    heading=line[3:].strip()))
            target = articles[-1].paragraphs
        elif line.startswith("# ") and not title and not articles and not preamble:
            title = line[2:].strip()
        elif line.startswith("- "):
            if target and (target[-1].number or target[-1].bullets):
                target[-1].bullets.append(line[2:].strip())
            else:
                target.append(Paragraph(text="", bullets=[line[2:].strip()]))
        elif match := NUMBERED.match(line):
            target.append(Paragraph(text=match.group(2), number=match.group(1)))
        else:
            target.append(Paragraph(text=line))
    return Document(title=title, preamble=preamble, articles=articles)


def problems(text: str) -> list[str]:
    """Why ``text`` cannot be published as terms (empty: it can)."""
    if not text.strip():
        return ["empty"]
    if len(text) > MAX_TEXT:
        return ["too_long"]
    if not parse(text).articles:
        return ["no_articles"]
    return []
