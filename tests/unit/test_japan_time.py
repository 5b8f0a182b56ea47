"""One way to show a time to people (issue 15, item 9): Japan time, the zone named, in
the page's language; and no resident-facing template formats a time any other way."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from idp.locales import japan_clock
from idp.locales import japan_time

TEMPLATES = Path(__file__).resolve().parents[2] / "consent_ui" / "templates"
# 08:05 UTC is 17:05 in Japan; 16:30 UTC is already the next day there.
AT = dt.datetime(2026, 12, 3, 8, 5, 9, tzinfo=dt.UTC)
LATE = dt.datetime(2026, 12, 3, 16, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(("value", "locale", "kwargs", "expected"), [
    (AT, "ja", {}, "2026年12月3日 17:05 (日本時間)"),
    (AT, "en", {}, "3 Dec 2026, 17:05 (Japan time)"),
    (AT, "ja", {"seconds": True}, "2026年12月3日 17:05:09 (日本時間)"),
    (AT, "en", {"zone": False}, "3 Dec 2026, 17:05"),
    (LATE, "ja", {}, "2026年12月4日 01:30 (日本時間)"),
    (AT.replace(tzinfo=None), "ja", {}, "2026年12月3日 17:05 (日本時間)"),
    (dt.date(2026, 12, 3), "en", {}, "3 Dec 2026"),
    (dt.date(2026, 12, 3), "ja", {}, "2026年12月3日"),
    (None, "ja", {}, ""),
    (AT, "fr", {}, "2026年12月3日 17:05 (日本時間)"),  # an unknown language: Japanese
    (AT, "en_US", {}, "3 Dec 2026, 17:05 (Japan time)"),
])
def test_japan_time(value, locale, kwargs, expected):
    assert japan_time(value, locale, **kwargs) == expected


def test_japan_clock_names_the_zone():
    assert japan_clock(AT) == "17:05:09 (日本時間)"
    assert japan_clock(AT, "en") == "17:05:09 (Japan time)"


def resident_templates() -> list[Path]:
    """Every template a resident (or a kiosk's screen, or a mail) shows: all but the
    admin console's."""
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in (".html", ".txt")
                  and "admin" not in p.relative_to(TEMPLATES).parts)


# A time value in an expression: an attribute named *_at, or an entry's ``at``.
TIME_VALUE = re.compile(r"\b[a-z_][\w.]*(?:_at|\.at)\b(?!\()")
OUTPUT = re.compile(r"(datetime=\")?\{\{(.*?)\}\}", re.S)


def unformatted(text: str) -> list[str]:
    """The time values printed without ``local_time``: each must be piped through it, or
    be the machine-readable ``.isoformat()`` of a ``<time datetime="…">``."""
    found = []
    for match in OUTPUT.finditer(text):
        in_datetime, expression = match.group(1), match.group(2)
        if "strftime" in expression or ("isoformat" in expression and not in_datetime):
            found.append(expression.strip())
            continue
        for value in TIME_VALUE.finditer(expression):
            rest = expression[value.end():]
            if not (re.match(r"\s*\|\s*local_time\b", rest)
                    or (in_datetime and rest.startswith(".isoformat()"))):
                found.append(expression.strip())
    return found


def test_no_resident_template_formats_a_time_by_itself():
    """Test that every time printed on a resident-facing page or mail goes through the
    ``local_time`` filter (``idp.locales.japan_time``)."""
    offenders = {str(p.relative_to(TEMPLATES)): unformatted(p.read_text("utf-8"))
                 for p in resident_templates()}
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(resident_templates()) > 20


@pytest.mark.parametrize("snippet", [
    "{{ entry.at }}",
    "{{ _('Since %(date)s', date=c.granted_at) }}",
    "{{ c.granted_at.strftime('%Y') }}",
    "{{ c.granted_at.isoformat() }}",
])
def test_the_check_finds_raw_times(snippet):
    """Test that the scan above can fail: raw values, strftime and a visible isoformat."""
    assert unformatted(snippet)


def test_the_check_accepts_the_filter_and_machine_readable_times():
    assert unformatted('<time datetime="{{ c.granted_at.isoformat() }}">'
                       "{{ c.granted_at|local_time }}</time>") == []
    assert unformatted("{{ _('Since %(date)s', date=c.granted_at | local_time) }}") == []
