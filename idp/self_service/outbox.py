"""``/dev/outbox``: the development outbox, for reading mail without a mail server.

It exists only while mail goes to the outbox (no ``smtp_url``, not
production); otherwise every path here is a 404. It is where residents of the
demo read their registration and reset mail, so it lives with their pages,
not in the mail domain (which sends and holds no views).
"""

from __future__ import annotations

import re

from flask import Blueprint
from flask import abort
from flask import render_template

from idp.mail import service as mail

bp = Blueprint("outbox", __name__, url_prefix="/dev/outbox")

LINK = re.compile(r"https?://[^\s<>\"]+")


@bp.before_request
def only_in_development():
    if not mail.outbox_active():
        abort(404)


@bp.get("/")
def index():
    """Every message in the outbox, newest first."""
    return render_template("outbox.html", entries=mail.outbox(), entry=None, links=[])


@bp.get("/<name>")
def show(name: str):
    """One message, with its links made clickable."""
    entry = mail.read_outbox(name)
    if entry is None:
        abort(404)
    return render_template("outbox.html", entries=None, entry=entry,
                           links=LINK.findall(entry.body))
