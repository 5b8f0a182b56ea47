"""Reading the audit trail: filters, pages, and the CSV export.

Filters combine with AND: company, client, resident (consortium ID, dashes
allowed), admin, event type (an exact tag such as ``client:revoke`` or a
prefix ending in ``:`` such as ``oauth:``) and a time range. Pages go
backwards from the newest event by append ``id`` (keyset pagination: stable
while new events arrive), so entries not sealed into the chain yet show too.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.extensions import db
from idp.spreadsheet import safe_cell

PAGE = 50
TAG = re.compile(r"^[a-z_]+(:[a-z_]+)*:?$")
ID = re.compile(r"^[0-9A-Za-z_-]{1,40}$")
CSV_COLUMNS = ["seq", "id", "at", "tag", "actor", "admin_id", "resident_id", "client_id",
               "company_id", "ip", "user_agent", "data", "format", "prev_digest", "digest"]


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class Filters:
    company_id: str | None = None
    client_id: str | None = None
    resident_id: str | None = None
    admin_id: str | None = None
    tag: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    @classmethod
    def parse(cls, args, day_start) -> Filters:
        """From request arguments; ``day_start(date)`` turns a day into its first instant."""
        def ident(name: str, upper: bool = False) -> str | None:
            value = (args.get(name) or "").strip()
            if upper:
                value = value.replace("-", "").replace(" ", "").upper()
            if not value:
                return None
            if not ID.match(value):
                raise FilterError(f"{name} is not an identifier")
            return value

        tag = (args.get("tag") or "").strip() or None
        if tag is not None and not TAG.match(tag):
            raise FilterError("event type must look like client:revoke or oauth:")
        start = end = None
        try:
            if args.get("from"):
                start = day_start(dt.date.fromisoformat(args["from"]))
            if args.get("to"):
                end = day_start(dt.date.fromisoformat(args["to"]) + dt.timedelta(days=1))
        except ValueError:
            raise FilterError("dates must look like 2026-04-01") from None
        if start and end and end <= start:
            raise FilterError("the period ends before it starts")
        return cls(company_id=ident("company"), client_id=ident("client"),
                   resident_id=ident("resident", upper=True), admin_id=ident("admin"),
                   tag=tag, start=start, end=end)

    def apply(self, query):
        if self.company_id:
            query = query.where(AuditEvent.company_id == self.company_id)
        if self.client_id:
            query = query.where(AuditEvent.client_id == self.client_id)
        if self.resident_id:
            query = query.where(AuditEvent.resident_id == self.resident_id)
        if self.admin_id:
            query = query.where(AuditEvent.admin_id == self.admin_id)
        if self.tag:
            if self.tag.endswith(":"):
                query = query.where(AuditEvent.tag.startswith(self.tag, autoescape=True))
            else:
                query = query.where(AuditEvent.tag == self.tag)
        if self.start:
            query = query.where(AuditEvent.at >= self.start)
        if self.end:
            query = query.where(AuditEvent.at < self.end)
        return query

    def as_dict(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                for k, v in vars(self).items() if v is not None}


def page(filters: Filters, before_id: int | None = None,
         size: int = PAGE) -> tuple[list[AuditEvent], int | None]:
    """Up to ``size`` events (sealed or not), newest appended first; and the id to
    continue before, if more."""
    query = filters.apply(select(AuditEvent)).order_by(AuditEvent.id.desc()).limit(size + 1)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    rows = list(db.session.scalars(query))
    more = len(rows) > size
    rows = rows[:size]
    return rows, rows[-1].id if more and rows else None


def rows(filters: Filters, after_seq: int = 0, batch: int = 1000) -> Iterator:
    """Every matching sealed event after position ``after_seq`` in chain order, then the
    unsealed entries in append order (no ``seq`` yet), as plain rows (exports). An
    incremental copy continues after the last ``seq`` it received."""
    after = after_seq
    while True:
        chunk = db.session.execute(
            filters.apply(select(*AuditEvent.__table__.c)).where(AuditEvent.seq > after)
            .order_by(AuditEvent.seq).limit(batch)).all()
        if not chunk:
            break
        yield from chunk
        after = chunk[-1].seq
    after_id = 0
    while True:
        chunk = db.session.execute(
            filters.apply(select(*AuditEvent.__table__.c))
            .where(AuditEvent.seq.is_(None), AuditEvent.id > after_id)
            .order_by(AuditEvent.id).limit(batch)).all()
        if not chunk:
            return
        yield from chunk
        after_id = chunk[-1].id


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return safe_cell(str(value))


def csv_lines(filters: Filters, after_seq: int = 0) -> Iterator[str]:
    """The export, line by line (header first); formula-like cells are neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield out.getvalue()
    for row in rows(filters, after_seq):
        out.seek(0)
        out.truncate()
        writer.writerow([_cell(getattr(row, c)) for c in CSV_COLUMNS])
        yield out.getvalue()


def count_since(tags: Iterable[AuditTag], since: dt.datetime, *, resident_id: str | None = None,
                admin_id: str | None = None) -> int:
    """How many events with one of these tags, about this resident or admin, are newer
    than ``since`` (a lockout counts failures so, idp.security.lockout)."""
    query = select(func.count()).select_from(AuditEvent).where(
        AuditEvent.tag.in_([str(tag) for tag in tags]), AuditEvent.at > since)
    if resident_id is not None:
        query = query.where(AuditEvent.resident_id == resident_id)
    if admin_id is not None:
        query = query.where(AuditEvent.admin_id == admin_id)
    return db.session.scalar(query) or 0


def known_tags() -> list[str]:
    return sorted(str(t) for t in AuditTag)
