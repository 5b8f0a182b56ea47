"""Release windows: the city export is cut into fixed buckets of Japan time (an hour, a
day, an ISO week from Monday, a calendar month) and covers only whole buckets that have
closed. An export for an overlapping window is made of the very same buckets, so no
window can be cut finer than a bucket and no bucket differs between two exports."""

from __future__ import annotations

import datetime as dt

from idp.locales import TIMEZONE

GRANULARITIES = ("hour", "day", "week", "month")
# A window of at most this many days: an hourly export of a year is 8,784 buckets.
MAX_DAYS = 366


class WindowError(ValueError):
    pass


def _next(start: dt.datetime, granularity: str) -> dt.datetime:
    if granularity == "hour":
        # Add in UTC: Japan has no daylight saving time, but stay honest anyway.
        return (start.astimezone(dt.UTC) + dt.timedelta(hours=1)).astimezone(TIMEZONE)
    if granularity == "day":
        return dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time(), TIMEZONE)
    if granularity == "week":
        return dt.datetime.combine(start.date() + dt.timedelta(days=7), dt.time(), TIMEZONE)
    first = start.date().replace(day=1)
    following = (first.replace(year=first.year + 1, month=1) if first.month == 12
                 else first.replace(month=first.month + 1))
    return dt.datetime.combine(following, dt.time(), TIMEZONE)


def check_window(start: dt.date, end: dt.date, granularity: str, today: dt.date) -> None:
    """Refuse a window that is not whole closed buckets of this granularity."""
    if granularity not in GRANULARITIES:
        raise WindowError(f"--granularity must be one of {', '.join(GRANULARITIES)}")
    if end < start:
        raise WindowError("--to must not be before --from")
    if end >= today:
        raise WindowError("--to must be before today (Japan time): only closed periods "
                          "are exported")
    if (end - start).days + 1 > MAX_DAYS:
        raise WindowError(f"a window covers at most {MAX_DAYS} days")
    if granularity == "week" and (start.isoweekday() != 1 or end.isoweekday() != 7):
        raise WindowError("weekly windows run from a Monday (--from) to a Sunday (--to)")
    if granularity == "month" and (
            start.day != 1 or (end + dt.timedelta(days=1)).day != 1):
        raise WindowError("monthly windows run from the first (--from) to the last day of "
                          "a month (--to)")


def buckets(start: dt.date, end: dt.date, granularity: str,
            today: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    """The (start, end) instants of every bucket of the window, in order."""
    check_window(start, end, granularity, today)
    finish = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), TIMEZONE)
    cursor = dt.datetime.combine(start, dt.time(), TIMEZONE)
    out = []
    while cursor < finish:
        following = _next(cursor, granularity)
        out.append((cursor, following))
        cursor = following
    return out


def hours(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The hours of the bucket [start, end): what every coarser bucket is made of."""
    out = []
    cursor = start.astimezone(TIMEZONE)
    while cursor < end:
        following = _next(cursor, "hour")
        out.append((cursor, following))
        cursor = following
    return out


def label(start: dt.datetime, granularity: str) -> str:
    """How the bucket is named in the export: its first instant, or its day/week/month."""
    local = start.astimezone(TIMEZONE)
    if granularity == "hour":
        return local.isoformat()
    if granularity == "day":
        return local.date().isoformat()
    if granularity == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.strftime("%Y-%m")
