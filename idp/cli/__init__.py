"""``idp``: the operators' command line. One module per noun; calls services only."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from idp.config import SettingsError


class Context:
    def __init__(self) -> None:
        self._app = None

    @property
    def app(self):
        if self._app is None:
            from idp import create_app

            try:
                self._app = create_app()
            except SettingsError as exc:
                raise click.ClickException(str(exc)) from exc
        return self._app


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    """One JSON object on stdout with --json, a human line otherwise."""
    click.echo(json.dumps(data, ensure_ascii=False) if as_json else text)


def in_app(fn: Callable) -> Callable:
    """Run the command inside an app context; commit on success, roll back on error.

    Domain errors (ValueError subclasses) become a clean message and exit 1.
    """

    @wraps(fn)
    @click.pass_obj
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        from idp.extensions import db

        with ctx.app.app_context():
            try:
                result = fn(*args, **kwargs)
                db.session.commit()
                return result
            except ValueError as exc:
                db.session.rollback()
                raise click.ClickException(str(exc)) from exc

    return wrapper


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Machi ID identity provider administration."""
    ctx.obj = Context()


def _register() -> None:
    from idp.cli import clients
    from idp.cli import companies
    from idp.cli import db
    from idp.cli import demo
    from idp.cli import export
    from idp.cli import keys
    from idp.cli import kiosks
    from idp.cli import serve
    from idp.cli import users

    for module in (db, companies, clients, kiosks, users, keys, export, serve, demo):
        main.add_command(module.group)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
