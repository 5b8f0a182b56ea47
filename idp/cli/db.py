"""``idp db upgrade|check``: Alembic migrations."""

from __future__ import annotations

import click
from alembic import command
from alembic.config import Config

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
    """Apply every migration not yet applied."""
    command.upgrade(alembic_config(ctx.settings.sqlalchemy_url), "head")
    click.echo("database is up to date", err=True)


@group.command()
@click.pass_obj
def check(ctx) -> None:
    """Fail if the models and the migrations disagree (alembic check)."""
    command.check(alembic_config(ctx.settings.sqlalchemy_url))
