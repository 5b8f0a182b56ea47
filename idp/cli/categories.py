"""``idp categories``: the kinds of registered data the consortium keeps."""

from __future__ import annotations

import json

import click

from idp.cli import emit
from idp.cli import emit_rows
from idp.cli import in_app
from idp.cli import json_option
from idp.exchange import categories
from idp.exchange.models import SENSITIVITIES


@click.group("categories")
def group() -> None:
    """Categories of registered data (keys of the contribute:/registered: scopes)."""


def describe(category) -> dict:
    return {"key": category.key, "label_ja": category.label_ja, "label_en": category.label_en,
            "schema": category.value_schema, "sensitivity": category.sensitivity,
            "retention_days": category.retention_days, "statistics": category.statistics,
            "created_at": category.created_at.isoformat()}


@group.command()
@click.option("--key", required=True, help="Lowercase key, e.g. language (the scope suffix).")
@click.option("--label-ja", required=True, help="The label residents read (Japanese).")
@click.option("--label-en", required=True, help="The label in English.")
@click.option("--schema-file", required=True, type=click.File("r"),
              help="A JSON Schema (Draft 2020-12) every value must satisfy.")
@click.option("--sensitivity", type=click.Choice(SENSITIVITIES), default="normal",
              show_default=True)
@click.option("--retention-days", type=click.IntRange(1, 3650), default=365, show_default=True,
              help="How long a contributed record is kept after it was received.")
@click.option("--statistics", is_flag=True,
              help="Its values may feed the city's de-identified statistics.")
@json_option
@in_app
def create(key, label_ja, label_en, schema_file, sensitivity, retention_days, statistics,
           as_json) -> None:
    """Add a category of registered data."""
    category = categories.create(key, label_ja, label_en, _schema(schema_file),
                                 sensitivity=sensitivity,
                                 retention_days=retention_days, statistics=statistics,
                                 actor="cli")
    emit(as_json, describe(category), f"created category {category.key} ({category.label_ja})")


def _schema(schema_file) -> dict | None:
    if schema_file is None:
        return None
    try:
        return json.load(schema_file)
    except ValueError as exc:
        raise categories.CategoryError(f"the schema file is not JSON: {exc}") from None


@group.command()
@click.argument("key")
@click.option("--label-ja", help="A new Japanese label.")
@click.option("--label-en", help="A new English label.")
@click.option("--schema-file", type=click.File("r"),
              help="A new JSON Schema; refused while values of the category are held.")
@click.option("--retention-days", type=click.IntRange(1, 3650),
              help="A new retention, for records received from now on.")
@click.option("--statistics/--no-statistics", default=None,
              help="Whether its values may feed the city's de-identified statistics.")
@json_option
@in_app
def update(key, label_ja, label_en, schema_file, retention_days, statistics,
           as_json) -> None:
    """Change a category: labels, retention, statistics flag, schema (only while no
    value is held). Options not given stay as they are."""
    category, changed = categories.update(
        key, label_ja=label_ja, label_en=label_en, schema=_schema(schema_file),
        retention_days=retention_days, statistics=statistics, actor="cli")
    emit(as_json, {**describe(category), "changed": changed},
         f"category {category.key}: changed {', '.join(changed)}" if changed
         else f"category {category.key}: nothing to change")


@group.command()
@click.argument("key")
@json_option
@in_app
def retire(key, as_json) -> None:
    """Take a category out of use (refused while a contract in force names it)."""
    category = categories.retire(key, actor="cli")
    emit(as_json, {**describe(category), "retired_at": category.retired_at.isoformat()},
         f"category {category.key} retired")


@group.command("list")
@json_option
@in_app
def list_categories(as_json: bool) -> None:
    """The categories in use."""
    rows = [describe(c) for c in categories.in_use()]
    emit_rows(as_json, "categories", rows,
              lambda r: f"{r['key']:<16} {r['sensitivity']:<9} {r['retention_days']:>4}d "
                        f"{'statistics ' if r['statistics'] else ''}{r['label_ja']} / "
                        f"{r['label_en']}",
              "no categories")
