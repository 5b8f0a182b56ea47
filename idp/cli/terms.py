"""``idp terms``: versions of the consortium's terms of use."""

from __future__ import annotations

import datetime as dt

import click

from idp.cli import emit
from idp.cli import in_app
from idp.cli import json_option
from idp.terms import service


def _when(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("use ISO 8601, e.g. 2026-12-01T00:00:00+09:00") from exc
    if parsed.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. +09:00")
    return parsed


@click.group("terms")
def group() -> None:
    """Terms of use: publish a new version, list versions."""


@group.command()
@click.option("--version", "version", required=True, help="Version name, e.g. 2026-12.")
@click.option("--url", default="", help="Where the full text is published.")
@click.option("--summary", default="", help="What changed (Japanese), shown to residents.")
@click.option("--summary-en", default="", help="What changed (English).")
@click.option("--effective-at", default=None,
              help="When it takes effect (ISO 8601 with time zone); default now.")
@json_option
@in_app
def publish(version, url, summary, summary_en, effective_at, as_json) -> None:
    """Publish a new version: every resident accepts it at their next sign-in, and every
    consent is asked again."""
    row = service.publish_terms(version, url, summary=summary, summary_en=summary_en,
                                effective_at=_when(effective_at), actor="cli")
    emit(as_json, {"version": row.version, "url": row.url,
                   "effective_at": row.effective_at.isoformat()},
         f"published terms {row.version}, effective {row.effective_at.isoformat()}")


@group.command("list")
@json_option
@in_app
def list_versions(as_json: bool) -> None:
    """Every published version, newest first, and the one in force."""
    current = service.current()
    rows = service.versions()
    data = {"current": current.version,
            "versions": [{"version": r.version, "url": r.url,
                          "effective_at": r.effective_at.isoformat(),
                          "published_at": r.published_at.isoformat(),
                          "published_by": r.published_by} for r in rows]}
    lines = [f"current: {current.version}"] + [
        f"{r.version}\t{r.effective_at.isoformat()}\t{r.url}" for r in rows]
    emit(as_json, data, "\n".join(lines))
