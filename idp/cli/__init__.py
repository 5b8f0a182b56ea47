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

    @property
    def settings(self):
        """The settings of the command's app, also outside an app context."""
        from idp import config

        return self.app.extensions[config.EXTENSION]


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


def period_options(fn: Callable) -> Callable:
    """``--from``, ``--to`` (days in Japan time) and ``--format`` (csv or json)."""
    for option in reversed((
        click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]),
                     help="First day (Japan time), YYYY-MM-DD."),
        click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]),
                     help="Last day (Japan time), inclusive."),
        click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
                     show_default=True),
    )):
        fn = option(fn)
    return fn


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    """One JSON object on stdout with --json, a human line otherwise."""
    click.echo(json.dumps(data, ensure_ascii=False) if as_json else text)


def emit_rows(as_json: bool, key: str, rows: list[dict[str, Any]],
              line: Callable[[dict[str, Any]], str], empty: str) -> None:
    """A listing: ``{key: rows}`` with --json, one ``line(row)`` per row otherwise (or
    ``empty`` when there are none)."""
    emit(as_json, {key: rows}, "\n".join(line(r) for r in rows) or empty)


def in_app(fn: Callable) -> Callable:
    """Run the command inside an app context; commit on success, roll back on error.

    Domain errors (ValueError subclasses) become a clean message and exit 1;
    the refusal itself is audited (``cli:command:refused``), nothing else is
    kept. After the commit, messages the command queued (back-channel logout
    tokens of a revoked client, a suspended company) are delivered and audited
    (``idp.outbox``); what fails is retried by ``idp worker``.
    """

    @wraps(fn)
    @click.pass_obj
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        from flask import g

        from idp.extensions import db
        from idp.outbox import service as outbox

        with ctx.app.app_context():
            try:
                result = fn(*args, **kwargs)
                db.session.commit()  # the command's unit of work: one commit at its end
            except ValueError as exc:
                db.session.rollback()
                # The path without the program's name: "companies suspend".
                path = click.get_current_context().command_path.split()[1:]
                _audit_refusal(" ".join(path), exc)
                raise click.ClickException(str(exc)) from exc
            if g.pop("idp_outbox_enqueued", False):
                outbox.deliver_in_new_context(ctx.app)
            return result

    return wrapper


def _audit_refusal(command: str, exc: Exception) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from idp.audit.service import record
    from idp.audit.tags import AuditTag
    from idp.extensions import db

    try:
        record(AuditTag.CLI_REFUSED, actor="cli", command=command[:100], reason=str(exc)[:300])
        # A transaction of its own, after the command's work was rolled back.
        db.session.commit()
    except SQLAlchemyError:  # e.g. a database not migrated yet: the message still goes out
        db.session.rollback()


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Machi ID identity provider administration."""
    ctx.obj = Context()


def _register() -> None:
    from idp.cli import admins
    from idp.cli import audit
    from idp.cli import categories
    from idp.cli import clients
    from idp.cli import companies
    from idp.cli import contracts
    from idp.cli import db
    from idp.cli import demo
    from idp.cli import export
    from idp.cli import keys
    from idp.cli import kiosks
    from idp.cli import monitor
    from idp.cli import reports
    from idp.cli import sensors
    from idp.cli import serve
    from idp.cli import terms
    from idp.cli import users
    from idp.cli import worker

    for module in (db, companies, clients, kiosks, sensors, users, terms, keys, admins, audit,
                   reports, export, serve, demo, worker, categories, contracts, monitor):
        main.add_command(module.group)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
