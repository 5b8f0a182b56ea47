"""``idp export``: data that leaves for the city, de-identified."""

from __future__ import annotations

import datetime as dt
import json

import click

from idp import config
from idp.cli import in_app
from idp.cli import period_options
from idp.kiosk import export


@click.group("export")
def group() -> None:
    """Exports for the city's database."""


@group.command("city-stats")
@period_options
@click.option("--k", type=click.IntRange(min=2), default=None,
              help="Smallest published group of residents (default: city_export_k).")
@in_app
def city_stats(start: dt.datetime, end: dt.datetime, fmt: str, k: int | None) -> None:
    """Touches and k-anonymous resident counts per kiosk and hour."""
    k = k or config.settings().city_export_k
    stats = export.city_stats(start.date(), end.date(), k)
    click.echo(json.dumps(stats, ensure_ascii=False) if fmt == "json"
               else export.to_csv(stats), nl=fmt == "json")
