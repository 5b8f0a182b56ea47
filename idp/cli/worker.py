"""``idp worker``: seal the audit trail every ``--seal-interval`` seconds; deliver the outbox
(logout tokens, security events, mail), retries included; every
``monitoring_interval_minutes`` run the data exchange's monitoring, purge registered data
past its retention and end the data links of contracts that ran out."""

from __future__ import annotations

import time
from collections import Counter

import click

from idp.cli import emit
from idp.cli import emit_rows
from idp.cli import in_app
from idp.cli import json_option


@click.group("worker", invoke_without_command=True)
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (cron, tests).")
@click.option("--interval", default=5, show_default=True, type=click.IntRange(1, 3600),
              help="Seconds between two looks at the outbox.")
@click.option("--seal-interval", default=1.0, show_default=True,
              type=click.FloatRange(0.1, 60),
              help="Seconds between two sealings of the audit trail.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print one JSON object.")
@click.pass_context
def group(ctx: click.Context, once: bool, interval: int, seal_interval: float,
          as_json: bool) -> None:
    """Seal the audit trail; deliver queued messages whose change has committed, and retry
    failed ones.

    Safe to run on several nodes at once (each message is claimed by one; one
    sealer at a time, the others skip their turn).
    """
    if ctx.invoked_subcommand is not None:
        return
    from idp.cli.audit import seal_in_new_context
    from idp.outbox import service as outbox

    app = ctx.obj.app
    if once:
        sealed = seal_in_new_context(app)
        periodic(app)
        results = outbox.deliver_in_new_context(app)
        counts = Counter(r["result"] for r in results)
        emit(as_json, {"attempted": len(results), "delivered": counts["delivered"],
                       "failed": counts["failed"], "sealed": sealed["events"]},
             f"{len(results)} attempted, {counts['delivered']} delivered, "
             f"{counts['failed']} failed; {sealed['events']} audit events sealed")
        return
    click.echo(f"sealing the audit trail every {seal_interval:g} s, delivering the outbox "
               f"every {interval} s (Ctrl-C stops)", err=True)
    every = ctx.obj.settings.monitoring_interval_minutes * 60
    last = delivered = float("-inf")
    try:
        while True:
            seal_in_new_context(app)
            if time.monotonic() - last >= every:
                periodic(app)
                last = time.monotonic()
            if time.monotonic() - delivered >= interval:
                outbox.deliver_in_new_context(app)
                delivered = time.monotonic()
            time.sleep(seal_interval)
    except KeyboardInterrupt:
        pass


def periodic(app) -> None:
    """The data exchange's housekeeping, one unit of work: purge expired registered
    data and sensor counts past their retention, tell recipients of data links that
    reached their expiry, end the links a contract that ran out alone allowed (and
    tell their recipients), run the monitoring
    (its alerts' mail goes out with the outbox next), and drop
    token read counts older than the monitoring's baseline."""
    from idp.cli.monitor import run_once
    from idp.exchange import lifecycle
    from idp.exchange import monitoring
    from idp.exchange import records
    from idp.exchange import token_reads
    from idp.extensions import db
    from idp.sensors import service as sensors

    with app.app_context():
        try:
            records.purge_expired()
            lifecycle.end_expired_links()
            lifecycle.end_links_of_lapsed_contracts()
            sensors.purge_expired()  # the retention /transparency states
            run_once("worker")
            # Reads older than any baseline are no longer needed.
            token_reads.purge(monitoring.window().baseline_start)
            db.session.commit()
        except Exception:  # noqa: BLE001 - the outbox must keep being delivered
            db.session.rollback()
            app.logger.exception("the data exchange's periodic work failed")


@group.command()
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
@json_option
@in_app
def dead(limit: int, as_json: bool) -> None:
    """Messages given up on (dead letters), newest first."""
    from idp.outbox import service as outbox

    rows = [{"id": m.id, "kind": m.kind, "target": m.target, "client_id": m.client_id,
             "attempts": m.attempts, "last_error": m.last_error,
             "created_at": m.created_at.isoformat()} for m in outbox.dead_letters(limit)]
    emit_rows(as_json, "dead", rows,
              lambda r: f"{r['id']} {r['kind']} {r['client_id']} {r['target']} after "
                        f"{r['attempts']} attempts: {r['last_error']}",
              "no dead letters")


@group.command()
@click.argument("message_id", type=int)
@in_app
def retry(message_id: int) -> None:
    """Queue a dead letter again (e.g. once the receiving service is fixed)."""
    from idp.outbox import service as outbox

    if outbox.retry(message_id) is None:
        raise click.ClickException(f"no dead letter {message_id}")
    click.echo(f"message {message_id} queued again; `idp worker` delivers it", err=True)
