"""``idp audit``: verify the hash-chained audit trail, and copy it off the host."""

from __future__ import annotations

import json
import sys

import click

from idp.audit import chain
from idp.audit import guard
from idp.audit import query
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.cli import emit
from idp.cli import in_app
from idp.cli import json_option
from idp.extensions import db


@click.group("audit")
def group() -> None:
    """The audit trail."""


@group.command()
@click.option("--expect", "anchors", multiple=True, metavar="SEQ:DIGEST",
              help="A head recorded earlier (repeatable): the chain must still pass through it.")
@json_option
@in_app
def verify(anchors: tuple[str, ...], as_json: bool) -> None:
    """Recompute the hash chain; name the first broken link. Exit 1 when it is broken.

    Prints the head (SEQ:DIGEST): write it down outside the database, and pass
    it to a later run with --expect, so a rebuilt chain is caught too.
    """
    expected = [chain.parse_anchor(a) for a in anchors]
    result = chain.verify(db.session, expected)
    result.guard_installed = guard.installed(db.session.connection())
    record(AuditTag.AUDIT_VERIFY, actor="cli", ok=result.ok, events=result.events,
           head_seq=result.head_seq, head_digest=result.head_digest,
           first_break=result.first_break.as_dict() if result.first_break else None,
           guard_installed=result.guard_installed)
    # Committed here, not by ``in_app``: a broken chain ends the command with
    # exit status 1 below, and its verification must be on record all the same.
    db.session.commit()
    if result.ok:
        text = (f"audit chain intact: {result.events} events\n"
                f"head {result.head_seq}:{result.head_digest}")
    else:
        where = f"event {result.first_break.seq}" if result.first_break.seq is not None \
            else "the chain"
        text = (f"audit chain BROKEN at {where} (id {result.first_break.event_id}): "
                f"{result.first_break.reason}\n"
                f"verified before the break: {result.events} events")
    if not result.guard_installed:
        text += "\nwarning: the append-only triggers are missing (see docs/admin.md)"
    emit(as_json, result.as_dict(), text)
    if not result.ok:
        sys.exit(1)


@group.command()
@click.option("--after", "after_seq", type=click.IntRange(min=0), default=0,
              help="Only events after this seq (for incremental copies).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True)
@in_app
def export(after_seq: int, fmt: str) -> None:
    """Every event (after --after) in chain order, with its digests, on stdout.

    JSON lines carry exactly what the digests cover, so a copy kept elsewhere
    can be verified on its own.
    """
    filters = query.Filters()
    if fmt == "csv":
        for line in query.csv_lines(filters, after_seq):
            click.echo(line, nl=False)
    else:
        for row in query.rows(filters, after_seq):
            item = {c: getattr(row, c) for c in query.CSV_COLUMNS}
            item["at"] = chain.timestamp(row.at)
            item["personal_salt"] = row.personal_salt
            item["personal_digest"] = row.personal_digest
            click.echo(json.dumps(item, ensure_ascii=False, sort_keys=True))
    record(AuditTag.AUDIT_EXPORT, actor="cli", format=fmt, after=after_seq)
