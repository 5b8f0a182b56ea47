"""``idp audit``: seal the audit trail into its hash chain, verify it, and copy it off the host.

``seal_pending`` is the sealing orchestration: the audit trail seals (``idp.audit.chain``),
the keys sign its heads (``idp.keys.audit_heads``), and this floor joins the two. ``idp
worker`` calls it every second or so; ``idp audit seal`` once.
"""

from __future__ import annotations

import json
import sys

import click
from flask import Flask

from idp.audit import chain
from idp.audit import guard
from idp.audit import query
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.cli import emit
from idp.cli import in_app
from idp.cli import json_option
from idp.extensions import db
from idp.keys import audit_heads


def seal_pending(max_batches: int = 100, batch: int = chain.BATCH) -> dict[str, int]:
    """Seal every sealable entry now, one committed batch of up to ``batch`` entries (and
    its head) at a time.

    Needs an app context. Another sealer holding the lock, or nothing to seal,
    ends the loop: the next run picks up what is left.
    """
    batches = events = 0
    last_seq = 0
    for _ in range(max_batches):
        sealed = chain.seal(db.session, audit_heads.sign, limit=batch)
        if sealed is None:
            db.session.rollback()
            break
        db.session.commit()
        batches, events, last_seq = batches + 1, events + sealed.events, sealed.seq
        if sealed.events < batch:
            break
    return {"batches": batches, "events": events, "seq": last_seq}


def seal_in_new_context(app: Flask) -> dict[str, int]:
    """``seal_pending`` in an app context of its own (the worker's loop); a failure is
    logged and retried at the next tick, never ends the worker."""
    with app.app_context():
        try:
            return seal_pending()
        except Exception:  # noqa: BLE001 - the worker goes on; the lag metric shows it
            db.session.rollback()
            app.logger.exception("sealing the audit trail failed")
            return {"batches": 0, "events": 0, "seq": 0}


@click.group("audit")
def group() -> None:
    """The audit trail."""


@group.command()
@json_option
@in_app
def seal(as_json: bool) -> None:
    """Seal the committed, unsealed entries into the chain now (``idp worker`` does it
    every second); one signed head per batch."""
    done = seal_pending(max_batches=1_000_000)
    tail = chain.unsealed(db.session)
    done["unsealed"] = tail.count
    emit(as_json, done,
         f"sealed {done['events']} events in {done['batches']} batches"
         + (f", head {done['seq']}" if done["batches"] else "")
         + f"; {tail.count} entries not sealable yet")


@group.command()
@click.option("--expect", "anchors", multiple=True, metavar="SEQ:DIGEST",
              help="A head recorded earlier (repeatable): the chain must still pass through it.")
@json_option
@in_app
def verify(anchors: tuple[str, ...], as_json: bool) -> None:
    """Recompute the hash chain and check every signed head; name the first broken link.
    Exit 1 when it is broken. Reports the unsealed tail.

    Prints the head (SEQ:DIGEST, SEQ a chain position): write it down outside
    the database, and pass it to a later run with --expect, so a rebuilt chain
    is caught too.
    """
    expected = [chain.parse_anchor(a) for a in anchors]
    result = chain.verify(db.session, expected, check=audit_heads.check)
    result.guard_installed = guard.installed(db.session.connection())
    record(AuditTag.AUDIT_VERIFY, actor="cli", ok=result.ok, events=result.events,
           head_seq=result.head_seq, head_digest=result.head_digest, heads=result.heads,
           unsealed=result.unsealed,
           first_break=result.first_break.as_dict() if result.first_break else None,
           guard_installed=result.guard_installed)
    # Committed here, not by ``in_app``: a broken chain ends the command with
    # exit status 1 below, and its verification must be on record all the same.
    db.session.commit()
    if result.ok:
        text = (f"audit chain intact: {result.events} sealed events, {result.heads} heads "
                f"({result.heads_signed} signed)\n"
                f"head {result.head_seq}:{result.head_digest}")
    else:
        where = f"event {result.first_break.seq}" if result.first_break.seq is not None \
            else "the chain"
        text = (f"audit chain BROKEN at {where} (id {result.first_break.event_id}): "
                f"{result.first_break.reason}\n"
                f"verified before the break: {result.events} events")
    if result.unsealed:
        text += (f"\nunsealed: {result.unsealed} entries, the oldest "
                 f"{result.oldest_unsealed_age:.0f} s old (not covered by the chain yet)")
    else:
        text += "\nunsealed: none"
    if not result.guard_installed:
        text += "\nwarning: the append-only triggers are missing (see docs/admin.md)"
    emit(as_json, result.as_dict(), text)
    if not result.ok:
        sys.exit(1)


@group.command()
@click.option("--after", "after_seq", type=click.IntRange(min=0), default=0,
              help="Only sealed events after this chain position (for incremental copies); "
                   "the unsealed entries always follow.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True)
@in_app
def export(after_seq: int, fmt: str) -> None:
    """Every sealed event (after --after) in chain order, with its digests, then the
    unsealed entries in append order (no seq or digest yet), on stdout.

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
