"""``/account/security/passkeys``: add, name and remove passkeys.

Adding one is a sensitive action, like turning TOTP on: the current password is
asked again before the browser is even given a challenge (``/options``), and the
challenge is bound to this resident. The browser then creates the credential
(``static/passkeys.js``) and posts it back (JSON). Renaming and removing are
plain forms; removing asks for the password too. Losing or removing every
passkey leaves the password (and its reset by mail) as the way in.
"""

from __future__ import annotations

from flask import flash
from flask import g
from flask import jsonify
from flask import redirect
from flask import request
from flask import url_for
from flask_babel import gettext as _

from idp.accounts import passkeys
from idp.accounts import service as accounts
from idp.extensions import db
from idp.security import passkeys as webauthn
from idp.self_service import bp
from idp.self_service import limit_by_resident
from idp.self_service import resident_required

MAX_INPUT = 4096


def _body() -> dict:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.post("/account/security/passkeys/options")
@resident_required
@limit_by_resident
def passkey_options():
    """After the password: a challenge to create a passkey for this resident."""
    password = _body().get("password")
    if not isinstance(password, str) or not accounts.check_password(g.resident,
                                                                    password[:MAX_INPUT]):
        return jsonify(error="bad_password",
                       message=_("The password is not correct.")), 401
    challenge_id, options = passkeys.begin_registration(g.resident)
    return jsonify(challenge=challenge_id, options=webauthn.json_object(options))


@bp.post("/account/security/passkeys")
@resident_required
def passkey_add():
    """Keep the passkey the browser created for the challenge."""
    body = _body()
    credential = body.get("credential")
    name = body.get("name") if isinstance(body.get("name"), str) else ""
    try:
        if not isinstance(credential, dict):
            raise passkeys.PasskeyError("malformed")
        passkeys.finish_registration(g.resident, body.get("challenge"), credential, name)
    except passkeys.PasskeyError as error:
        db.session.rollback()
        messages = {
            "challenge": _("Adding the passkey took too long. Please try again."),
            "too_many": _("You cannot add more passkeys. Remove one first."),
            "duplicate": _("This passkey is already added."),
        }
        return jsonify(error=error.reason, message=messages.get(
            error.reason, _("The passkey could not be added. Please try again."))), 400
    flash(_("Your passkey has been added. You can now sign in with it."), "success")
    return jsonify(redirect=url_for("account.security")), 201


@bp.post("/account/security/passkeys/<int:passkey_id>/name")
@resident_required
def passkey_rename(passkey_id: int):
    """Give a passkey a name the resident recognises (the phone, the key)."""
    try:
        passkeys.rename(g.resident, passkey_id, request.form.get("name", "")[:MAX_INPUT])
    except passkeys.PasskeyError as error:
        db.session.rollback()
        if error.reason == "not_found":
            return redirect(url_for("account.security"), 303)
        flash(_("Enter a name for the passkey."), "error")
        return redirect(url_for("account.security"), 303)
    flash(_("The passkey has been renamed."), "success")
    return redirect(url_for("account.security"), 303)


@bp.post("/account/security/passkeys/<int:passkey_id>/remove")
@resident_required
def passkey_remove(passkey_id: int):
    """Remove a passkey (the password is required); it no longer signs in."""
    if not accounts.check_password(g.resident, request.form.get("password", "")[:MAX_INPUT]):
        flash(_("The password is not correct. The passkey was not removed."), "error")
        return redirect(url_for("account.security"), 303)
    try:
        passkeys.remove(g.resident, passkey_id)
    except passkeys.PasskeyError:
        db.session.rollback()
        return redirect(url_for("account.security"), 303)
    flash(_("The passkey has been removed. It can no longer be used to sign in."), "success")
    return redirect(url_for("account.security"), 303)
