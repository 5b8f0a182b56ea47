"""An enrolled admin and a browser that drives the console (flaskr's AuthActions).

Codes come from pyotp at the (possibly frozen) current time; a code works
once, so tests that sign in and then re-authenticate move the clock to the
next 30-second step in between (``next_step``).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass

import pyotp
from freezegun import freeze_time
from sqlalchemy import select

from idp.admin import service as admins
from idp.audit.models import AuditEvent
from idp.extensions import db

ADMIN_EMAIL = "kanri@consortium.example.jp"
ADMIN_PASSWORD = "sapporo-admin-pass-2026"


@dataclass
class EnrolledAdmin:
    id: str
    email: str
    password: str
    secret: str

    def code(self, at: float | None = None) -> str:
        return pyotp.TOTP(self.secret).at(time.time() if at is None else at)


def enrolled_admin(email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> EnrolledAdmin:
    """An admin who followed the enrolment link (through the service, at the current step)."""
    admin, token = admins.create_admin(email, actor="test")
    secret = admin.totp_secret
    # Enrol one step in the past, so the current step's code stays free to sign in. The
    # clock is frozen there: a code made at "now - 30 s" and checked a moment later falls
    # out of the drift window when a 30-second boundary passes in between.
    with freeze_time(dt.datetime.fromtimestamp(time.time() - 30, dt.UTC)):
        admins.enrol(token, password, pyotp.TOTP(secret).now())
    db.session.commit()
    return EnrolledAdmin(admin.id, email, password, secret)


def next_step(frozen) -> None:
    """Move a frozen clock to the next TOTP step (a code works once)."""
    frozen.tick(dt.timedelta(seconds=30))


def hidden(html: str, name: str, action: str | None = None) -> str:
    """The value of hidden input ``name`` (in the form posting to ``action``, if given)."""
    if action is not None:
        start = html.index(f'action="{action}"')
        html = html[start:html.index("</form>", start)]
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} on the page"
    return match.group(1)


class AdminBrowser:
    """An admin's browser on the Flask test client."""

    def __init__(self, client, admin: EnrolledAdmin):
        self.client = client
        self.admin = admin

    def login(self, code: str | None = None, password: str | None = None, **extra):
        page = self.client.get("/admin/login")
        data = {"email": self.admin.email,
                "password": self.admin.password if password is None else password,
                "code": self.admin.code() if code is None else code,
                "csrf_token": hidden(page.text, "csrf_token"), **extra}
        return self.client.post("/admin/login", data=data)

    def reauth(self, code: str | None = None, password: str | None = None):
        page = self.client.get("/admin/reauth")
        data = {"csrf_token": hidden(page.text, "csrf_token"), "code": code or "",
                "password": password or ""}
        return self.client.post("/admin/reauth", data=data)

    def form(self, page_path: str, action: str, buffered: bool = False, **fields):
        """Open ``page_path`` and post its form for ``action`` with ``fields``.

        ``buffered`` reads a streamed answer (CSV exports) while the request's
        context is still there.
        """
        page = self.client.get(page_path)
        assert page.status_code == 200, page.text
        data = {"csrf_token": hidden(page.text, "csrf_token", action),
                "form_token": hidden(page.text, "form_token", action),
                "return_to": page_path, **fields}
        return self.client.post(action, data=data, buffered=buffered)


def events(*tags: str) -> list[AuditEvent]:
    db.session.rollback()
    query = select(AuditEvent).order_by(AuditEvent.id)
    if tags:
        query = query.where(AuditEvent.tag.in_(tags))
    return list(db.session.scalars(query))
