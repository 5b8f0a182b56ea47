"""``idp report``: usage reports for the member companies' data-use contracts."""

from __future__ import annotations

import json

import click

from idp.admin import reports
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.citydata import operations as ops
from idp.cli import in_app
from idp.cli import period_options


@click.group("report")
def group() -> None:
    """Reports."""


@group.command()
@click.option("--company", "company_id", required=True, help="The company's id.")
@period_options
@in_app
def usage(company_id: str, start, end, fmt: str) -> None:
    """Residents who consented, claims released, tokens and kiosk touches (利用状況報告)."""
    report = reports.usage(company_id, start.date(), end.date())
    record(AuditTag.REPORT_USAGE, actor="cli", company_id=report["company"]["id"], format=fmt,
           period=report["period"])
    if fmt == "json":
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        click.echo(reports.to_csv(report), nl=False)


@group.command()
@click.option("--month", required=True, help="A closed month (Japan time), YYYY-MM.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True)
@click.option("--k", type=click.IntRange(min=2), default=None,
              help="Smallest published number (default and floor: city_export_k).")
@in_app
def operations(month: str, fmt: str, k: int | None) -> None:
    """How the platform was used in a month, de-identified, for publication (seed 003)."""
    report = ops.summary(month, k)
    if fmt == "json":
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        click.echo(ops.to_csv(report), nl=False)
