"""``idp export``: data that leaves for the city, de-identified."""

from __future__ import annotations

import datetime as dt
import json

import click

from idp.citydata import buckets
from idp.citydata import export
from idp.cli import in_app
from idp.cli import period_options


@click.group("export")
def group() -> None:
    """Exports for the city's database."""


@group.command("city-stats")
@period_options
@click.option("--k", type=click.IntRange(min=2), default=None,
              help="Smallest published group of residents (default and floor: "
                   "city_export_k).")
@click.option("--l", "l_diversity", type=click.IntRange(min=2), default=None,
              help="Distinct values a sensitive breakdown needs (default and floor: "
                   "city_export_l).")
@click.option("--granularity", type=click.Choice(buckets.GRANULARITIES), default="hour",
              show_default=True, help="The time bucket: whole closed hours, days, ISO weeks "
                                      "(Monday to Sunday) or months.")
@in_app
def city_stats(start: dt.datetime, end: dt.datetime, fmt: str, k: int | None,
               l_diversity: int | None, granularity: str) -> None:
    """Touches, sensor counts and de-identified resident breakdowns per area and time
    bucket (docs/city-export.md)."""
    stats = export.city_stats(start.date(), end.date(), k, granularity=granularity,
                              l_diversity=l_diversity)
    click.echo(json.dumps(stats, ensure_ascii=False) if fmt == "json"
               else export.to_csv(stats), nl=fmt == "json")
