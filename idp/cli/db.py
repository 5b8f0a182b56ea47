"""``idp db upgrade|check``: Alembic migrations."""

from __future__ import annotations

import click
from alembic import command
from alembic.config import Config

from idp.cli import in_app
from idp.config import ROOT


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    return config


@click.group("db")
def group() -> None:
    """Database schema."""


@group.command()
@click.pass_obj
def upgrade(ctx) -> None:
    """Apply every migration not yet applied, then add the seed-000 categories of
    registered data that do not exist yet (idp.exchange.categories.DEFAULTS)."""
    command.upgrade(alembic_config(ctx.settings.sqlalchemy_url), "head")
    _default_categories()
    click.echo("database is up to date", err=True)


@in_app
def _default_categories() -> None:
    from idp.exchange import categories

    created = categories.ensure_defaults()
    if created:
        click.echo(f"categories of registered data added: {', '.join(created)}", err=True)


@group.command()
@click.pass_obj
def check(ctx) -> None:
    """Fail if the models and the migrations disagree (alembic check)."""
    command.check(alembic_config(ctx.settings.sqlalchemy_url))
