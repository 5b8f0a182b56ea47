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
@click.option("--summary", required=True, help="What changed (Japanese), shown to residents.")
@click.option("--summary-en", required=True, help="What changed (English).")
@click.option("--text", "text_file", type=click.File(encoding="utf-8"), default=None,
              help="File with the full text (Japanese); default: the newest version's text.")
@click.option("--text-en", "text_en_file", type=click.File(encoding="utf-8"), default=None,
              help="File with the full text (English); default: the newest version's text.")
@click.option("--effective-at", default=None,
              help="When it takes effect (ISO 8601 with time zone); default now.")
@json_option
@in_app
def publish(version, url, summary, summary_en, text_file, text_en_file, effective_at,
            as_json) -> None:
    """Publish a new version: every resident accepts it at their next sign-in, and every
    consent is asked again. The text format is that of idp/terms/text/ja.md."""
    row = service.publish_terms(version, url, summary=summary, summary_en=summary_en,
                                text=text_file.read() if text_file else "",
                                text_en=text_en_file.read() if text_en_file else "",
                                effective_at=_when(effective_at), actor="cli")
    emit(as_json, {"version": row.version, "url": row.url,
                   "effective_at": row.effective_at.isoformat()},
         f"published terms {row.version}, effective {row.effective_at.isoformat()}")


@group.command("show")
@click.option("--version", "version", default=None, help="Default: the version in force.")
@click.option("--en", "english", is_flag=True, help="The English text.")
@in_app
def show(version, english) -> None:
    """Print the full text of a version (a start for the next one's --text)."""
    found = service.find(version) if version else service.current()
    if found is None:
        raise click.ClickException(f"no version {version} in effect")
    click.echo(found.text_en if english else found.text)


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
