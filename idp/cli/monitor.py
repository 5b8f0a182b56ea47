"""``idp monitor``: the neutral operator's monitoring of the data exchange."""

from __future__ import annotations

import click

from idp.cli import emit
from idp.cli import emit_rows
from idp.cli import in_app
from idp.cli import json_option


@click.group("monitor")
def group() -> None:
    """Rules that flag improper transactions (idp worker runs them every few minutes)."""


def admin_emails() -> list[str]:
    """Who is mailed an alert: every admin who can sign in to the console."""
    from idp.admin import service as admins

    return [a.email for a in admins.list_admins() if a.can_sign_in]


def run_once(actor: str) -> list[dict]:
    """Evaluate the last complete window; the new alerts, described."""
    from idp.exchange import monitoring

    return [monitoring.describe(a)
            for a in monitoring.run(admin_emails=admin_emails(), actor=actor)]


@group.command()
@json_option
@in_app
def run(as_json: bool) -> None:
    """Evaluate the last complete window now; store, audit and mail new alerts."""
    rows = run_once("cli")
    emit(as_json, {"alerts": rows},
         "\n".join(f"alert {r['id']} {r['rule']} {r['company_id'] or '-'} "
                   f"{r['client_id'] or ''}".rstrip() for r in rows) or "no new alerts")


@group.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only alerts not acknowledged yet.")
@json_option
@in_app
def list_alerts(open_only: bool, as_json: bool) -> None:
    """Alerts, newest first, with their evidence in --json."""
    from idp.exchange import monitoring

    rows = [monitoring.describe(a) for a in monitoring.alerts(open_only=open_only)]
    emit_rows(as_json, "alerts", rows,
              lambda r: f"{r['id']} {r['rule']:<13} {r['company_id'] or '-'} "
                        f"{r['window_start']} {'ack' if r['acknowledged_at'] else 'open'}",
              "no alerts")
