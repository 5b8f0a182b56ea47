"""What happens after the password is right: the second factor, then the session.

``after_password`` is called by ``/login`` once ``accounts.authenticate``
accepted the password. A resident without TOTP is signed in at once. A
resident with TOTP is not: the browser only remembers, in its signed session
cookie, who passed the first step, when, and where to go afterwards
(``PENDING_TTL`` seconds), and ``/login/second-factor`` asks for the code.

Whether the second step is needed is the ``second_factor`` check of the
policy table (``idp.interaction.policy``). ``complete`` starts the session
(a new session id, audited with its ``amr``) and continues: to the pending
authorization request (``idp.interaction.flow`` runs the rest of the table,
the terms of use included), or to the terms page when the resident must
accept a new version, or to ``next``.
"""

from __future__ import annotations

import time

from flask import redirect
from flask import session
from flask import url_for
from flask_babel import get_locale

from idp.accounts.models import Resident
from idp.extensions import db
from idp.interaction import flow
from idp.interaction import policy
from idp.terms import service as terms

PENDING = "second_factor"
PENDING_TTL = 300
AMR_PASSWORD = ["pwd"]
AMR_TOTP = ["pwd", "otp", "mfa"]


def after_password(resident: Resident, uid: str | None, next_url: str | None):
    waiting = policy.Context(client=None, password_passed=resident)
    if policy.first_unmet(waiting, (policy.SECOND_FACTOR,)) is not None:
        session[PENDING] = {"r": resident.id, "t": time.time(), "i": uid, "n": next_url}
        return redirect(url_for("interaction.second_factor"))
    return complete(resident, uid, next_url, AMR_PASSWORD)


def pending() -> tuple[Resident, dict] | None:
    """The resident waiting for their second factor in this browser, if any."""
    item = session.get(PENDING)
    if not isinstance(item, dict) or item.get("t", 0) + PENDING_TTL <= time.time():
        return None
    resident = db.session.get(Resident, item.get("r") or "")
    if resident is None or not resident.totp_enabled:
        return None
    return resident, item


def cancel() -> None:
    session.pop(PENDING, None)


def complete(resident: Resident, uid: str | None, next_url: str | None, amr: list[str]):
    session.pop(PENDING, None)
    row = flow.sign_in(resident, amr)
    resident.locale = str(get_locale())
    if uid and flow.load_interaction(uid) is not None:
        flow.mark_logged_in(uid, row)
        return redirect(url_for("interaction.resume", uid=uid))
    if terms.needs_acceptance(resident):
        return redirect(url_for("interaction.terms", next=next_url))
    return redirect(next_url or url_for("interaction.index"))
