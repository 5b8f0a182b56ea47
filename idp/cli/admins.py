"""``idp admins``: consortium administrators of the console under /admin."""

from __future__ import annotations

import click

from idp.admin import service
from idp.cli import emit
from idp.cli import emit_rows
from idp.cli import in_app
from idp.cli import json_option


@click.group("admins")
def group() -> None:
    """Admin accounts (password + TOTP; enrolled through a one-time link)."""


def _emit_link(as_json: bool, admin, token: str, what: str) -> None:
    """The one-time enrolment link, shown once."""
    data = {"id": admin.id, "email": admin.email, "status": admin.status,
            "enrolment_url": service.enrolment_url(token),
            "expires_at": admin.enrolment_expires_at.isoformat()}
    emit(as_json, data, f"admin {admin.id} ({admin.email}) {what}\n"
                        f"enrolment link (shown once, valid until {data['expires_at']}):\n"
                        f"{data['enrolment_url']}")


@group.command()
@click.option("--email", required=True, help="The admin's email address (their sign-in name).")
@json_option
@in_app
def create(email: str, as_json: bool) -> None:
    """Invite an admin: prints the one-time enrolment link (shown once)."""
    admin, token = service.create_admin(email, actor="cli")
    _emit_link(as_json, admin, token, "invited")


@group.command("list")
@json_option
@in_app
def list_admins(as_json: bool) -> None:
    """Every admin with their state (invited, active, disabled)."""
    rows = [{"id": a.id, "email": a.email, "status": a.status,
             "created_at": a.created_at.isoformat(),
             "last_login_at": a.last_login_at.isoformat() if a.last_login_at else None}
            for a in service.list_admins()]
    emit_rows(as_json, "admins", rows, lambda r: f"{r['id']} {r['status']:<8} {r['email']}",
              "no admins")


@group.command()
@click.argument("admin")
@json_option
@in_app
def reset(admin: str, as_json: bool) -> None:
    """Lost phone or password: new secret and a new enrolment link; sessions end."""
    row, token = service.reset_admin(admin, actor="cli")
    _emit_link(as_json, row, token, "reset")


@group.command()
@click.argument("admin")
@json_option
@in_app
def disable(admin: str, as_json: bool) -> None:
    """No more sign-ins for this admin (id or email); their sessions end at once."""
    row = service.disable_admin(admin, actor="cli")
    emit(as_json, {"id": row.id, "email": row.email, "status": row.status},
         f"admin {row.id} ({row.email}) is disabled")
