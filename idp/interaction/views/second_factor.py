"""The second sign-in step (the ``second_factor`` check of
``idp.interaction.policy``): the code from the authentication app, or a
recovery code, after the password (``idp.interaction.signin``)."""

from __future__ import annotations

from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _

from idp.accounts import totp
from idp.extensions import commit_on_error
from idp.interaction import signin
from idp.interaction.views import bp
from idp.interaction.views.login import safe_next

MAX_INPUT = 4096  # as every form field (idp.self_service.forms)

@bp.route("/login/second-factor", methods=["GET", "POST"])
def second_factor():
    """The code from the authentication app, or a recovery code."""
    waiting = signin.pending()
    if waiting is None:
        return redirect(url_for("interaction.login"))
    resident, item = waiting
    if request.method == "GET":
        return render_template("account/second_factor.html", error=None)
    if request.form.get("action") == "cancel":
        signin.cancel()
        return redirect(url_for("interaction.login", interaction=item.get("i") or None,
                                next=item.get("n") or None))
    try:
        method = totp.verify_sign_in(resident, request.form.get("code", "")[:MAX_INPUT])
    except totp.TotpError as error:
        commit_on_error()  # keep the failure's audit record: it counts towards the limit
        messages = {
            "locked": _("Too many wrong codes. Wait 15 minutes and try again."),
            "replayed": _("This code has already been used. Wait for the next code."),
        }
        return render_template(
            "account/second_factor.html",
            error=messages.get(error.reason, _("The code is not correct."))), (
            429 if error.reason == "locked" else 401)
    amr = signin.AMR_TOTP if method == "otp" else ["pwd", "mfa"]
    return signin.complete(resident, item.get("i"), safe_next(item.get("n")), amr)
