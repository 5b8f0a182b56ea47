"""The languages Machi ID speaks: Japanese first, English second; and the one way times
are shown to people.

Plain constants and functions at the bottom of the house, so that mail, pages, receipts
and the protocol's ``ui_locales`` all agree without importing a web package.

Times shown to people are Japan time, whatever the page's language, with the zone
named: ``2026年12月3日 17:05 (日本時間)`` / ``3 Dec 2026, 17:05 (Japan time)``
(``japan_time``; templates use the ``local_time`` filter, ``idp.self_service``).
Protocol fields and files (JSON, ``<time datetime>``) keep ISO 8601 with an offset.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

LOCALES = ("ja", "en")
DEFAULT = "ja"
# Residents, kiosks and the consortium all live in Japan time.
TIMEZONE = ZoneInfo("Asia/Tokyo")


def japan_today() -> dt.date:
    """Today in Japan: the consortium's day (reports, contracts, city exports)."""
    return dt.datetime.now(TIMEZONE).date()


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")


def _language(locale) -> str:
    language = str(locale or DEFAULT).split("_")[0].split("-")[0]
    return language if language in LOCALES else DEFAULT


def japan_time(value: dt.datetime | dt.date | None, locale=DEFAULT, *,
               seconds: bool = False, zone: bool = True) -> str:
    """``value`` in Japan time for people reading ``locale``: the date, the time (with
    ``seconds`` if asked) and the zone's name (``zone``). A ``date`` gives the date alone;
    a naive datetime is taken as UTC (what the database stores); None gives "".
    """
    if value is None:
        return ""
    ja = _language(locale) == "ja"
    if not isinstance(value, dt.datetime):
        return f"{value.year}年{value.month}月{value.day}日" if ja \
            else f"{value.day} {_MONTHS[value.month - 1]} {value.year}"
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    local = value.astimezone(TIMEZONE)
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    if ja:
        text = f"{local.year}年{local.month}月{local.day}日 {clock}"
        return f"{text} (日本時間)" if zone else text
    text = f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {clock}"
    return f"{text} (Japan time)" if zone else text


def japan_clock(value: dt.datetime, locale=DEFAULT) -> str:
    """The time of day alone in Japan time, with the zone named (a kiosk's list of
    today's touches): ``17:05:09 (日本時間)`` / ``17:05:09 (Japan time)``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    clock = value.astimezone(TIMEZONE).strftime("%H:%M:%S")
    return f"{clock} (日本時間)" if _language(locale) == "ja" else f"{clock} (Japan time)"
