"""Sign-in (password and TOTP, or a passkey), sign-out, re-authentication, enrolment,
and the admin's own passkeys (``/admin/passkeys``)."""

from __future__ import annotations

from flask import flash
from flask import g
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _

from idp import config
from idp.accounts.passkeys import PasskeyError
from idp.admin import auth
from idp.admin import service
from idp.admin.views import COOKIE
from idp.admin.views import admin_required
from idp.admin.views import bp
from idp.admin.views import safe_return
from idp.extensions import commit_on_error
from idp.extensions import db
from idp.extensions import limiter
from idp.security import passkeys as webauthn
from idp.security import totp


def _login_limit() -> str:
    return config.settings().admin_login_limit


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], error_message="too many sign-in attempts")
def login():
    """Sign in with email, password and the code of the authenticator app."""
    next_url = safe_return(request.values.get("next"), url_for("admin.dashboard"))
    if request.method == "GET":
        if g.get("admin_session") is not None:
            return redirect(next_url, 303)
        return render_template("admin/login.html", email="", error=None, next_url=next_url)
    email = request.form.get("email", "")
    try:
        admin = auth.sign_in(email, request.form.get("password", ""),
                             request.form.get("code", ""))
    except auth.AuthError:
        commit_on_error()  # keep the audit record of the failure (its reason says which)
        # One answer for every failure, whatever the reason: a different one for
        # "right password, no code" confirmed a guessed password and left the
        # second factor as the only barrier (OWASP Authentication Cheat Sheet,
        # "Authentication and Error Messages": one generic message for any failure).
        message = _("The sign-in failed. Check the email address, the password and the "
                    "code. After several failures the account is locked for 15 minutes.")
        return render_template("admin/login.html", email=email[:254], error=message,
                               next_url=next_url), 401
    return _signed_in(admin, redirect(next_url, 303), "password")


def _signed_in(admin, response, method: str):
    if g.get("admin_session") is not None:
        auth.end_session(g.admin_session)  # one browser, one console session
    sid = auth.start_session(admin, method)
    response.set_cookie(COOKIE, sid, httponly=True, secure=config.settings().secure_cookies,
                        samesite="Strict", path="/admin")
    return response


def _json_body() -> dict:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.post("/login/passkey/options")
@limiter.limit(_login_limit, error_message="too many sign-in attempts")
def passkey_sign_in_options():
    """A single-use challenge for the console's passkey sign-in."""
    challenge_id, options = auth.begin_passkey_sign_in()
    return jsonify(challenge=challenge_id, options=webauthn.json_object(options))


@bp.post("/login/passkey")
@limiter.limit(_login_limit, error_message="too many sign-in attempts")
def passkey_sign_in():
    """Sign in with a passkey alone (it replaces the password and the code)."""
    body = _json_body()
    next_url = safe_return(body.get("next") if isinstance(body.get("next"), str) else None,
                           url_for("admin.dashboard"))
    try:
        if not isinstance(body.get("credential"), dict):
            raise auth.AuthError("malformed")
        admin = auth.passkey_sign_in(body.get("challenge"), body["credential"])
    except auth.AuthError:
        commit_on_error()
        return jsonify(error="access_denied", message=_(
            "The sign-in failed. After several failures the account is locked for 15 "
            "minutes.")), 401
    return _signed_in(admin, jsonify(redirect=next_url), "passkey")


@bp.get("/passkeys")
@admin_required
def passkeys():
    """The admin's passkeys, and adding one (after a recent password or code check)."""
    row = g.admin_session
    if not auth.fresh(row):
        flash(_("Please confirm it is you before this action."), "info")
        return redirect(url_for("admin.reauth", next=url_for("admin.passkeys")), 303)
    return render_template("admin/passkeys.html", passkeys=auth.passkeys_of(row.admin_id),
                           required=auth.must_enrol_passkey(row.admin))


@bp.post("/passkeys/options")
@admin_required
def passkey_options():
    row = g.admin_session
    if not auth.fresh(row):
        return jsonify(error="reauth", message=_(
            "Please confirm it is you before this action.")), 401
    challenge_id, options = auth.begin_passkey_enrolment(row.admin)
    return jsonify(challenge=challenge_id, options=webauthn.json_object(options))


@bp.post("/passkeys")
@admin_required
def passkey_add():
    row = g.admin_session
    body = _json_body()
    if not auth.fresh(row):
        return jsonify(error="reauth", message=_(
            "Please confirm it is you before this action.")), 401
    try:
        if not isinstance(body.get("credential"), dict):
            raise PasskeyError("malformed")
        auth.finish_passkey_enrolment(row.admin, body.get("challenge"), body["credential"],
                                      body.get("name") if isinstance(body.get("name"), str)
                                      else "")
    except PasskeyError as error:
        db.session.rollback()
        return jsonify(error=error.reason, message=_(
            "The passkey could not be added. Please try again.")), 400
    flash(_("Your passkey has been added. You can now sign in with it."), "success")
    return jsonify(redirect=url_for("admin.passkeys")), 201


@bp.post("/logout")
@admin_required
def logout():
    """End the console session (the resident's session, if any, is not touched)."""
    auth.end_session(g.admin_session)
    g.admin_session = None
    response = redirect(url_for("admin.login"), 303)
    response.delete_cookie(COOKIE, path="/admin", samesite="Strict",
                           secure=config.settings().secure_cookies, httponly=True)
    return response


@bp.route("/reauth", methods=["GET", "POST"])
@admin_required
def reauth():
    """Confirm it is you (password or a new code) before a destructive action."""
    next_url = safe_return(request.values.get("next"), url_for("admin.dashboard"))
    if request.method == "GET":
        return render_template("admin/reauth.html", error=None, next_url=next_url)
    try:
        auth.reauthenticate(g.admin_session, request.form.get("password", ""),
                            request.form.get("code", ""))
    except auth.AuthError as error:
        commit_on_error()  # the failure counts towards the lock
        message = {
            "replayed_code": _("This code was already used. Wait for the next code."),
            "missing_credentials": _("Enter your password or a code."),
            "locked": _("Too many failures: try again in 15 minutes."),
        }.get(error.reason, _("That was not correct."))
        return render_template("admin/reauth.html", error=message, next_url=next_url), 401
    flash(_("Confirmed. You can go on for the next %(minutes)s minutes.",
            minutes=max(1, config.settings().admin_reauth_window // 60)), "success")
    return redirect(next_url, 303)


def _enrolment_error(error: service.AdminError) -> str:
    """What the enrolment page says for a refusal, in the page's language."""
    return {
        "password_short": _("The password must be at least %(n)s characters.",
                            n=service.MIN_PASSWORD),
        "password_long": _("The password must be at most %(n)s characters.",
                           n=service.MAX_PASSWORD),
        "password_has_email": _("The password must not contain your email address."),
        "passwords_differ": _("The two passwords differ."),
        "bad_code": _("The code is not correct. Check the time on your phone and enter "
                      "the code now shown."),
    }.get(error.reason, _("This enrolment link is not valid or has expired."))


@bp.route("/enrol", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], error_message="too many attempts")
def enrol():
    """Finish an invitation: choose a password and set up the authenticator app. The code
    just proven signs the admin in (a new session id; a console session this browser had
    ends): the code cannot be used again to sign in, it works once."""
    token = request.values.get("token", "")
    admin = service.by_enrolment_token(token)
    if admin is None:
        return render_template("admin/enrol_invalid.html"), 404
    error = None
    if request.method == "POST":
        try:
            if request.form.get("password", "") != request.form.get("password_repeat", ""):
                raise service.AdminError("the two passwords differ", "passwords_differ")
            admin = service.enrol(token, request.form.get("password", ""),
                                  request.form.get("code", ""))
        except service.AdminError as exc:
            db.session.rollback()
            error = _enrolment_error(exc)
        else:
            flash(_("Your account is ready and you are signed in. Next time, sign in with "
                    "your password and a new code from the app."), "success")
            return _signed_in(admin, redirect(url_for("admin.dashboard"), 303), "enrolment")
    uri = totp.provisioning_uri(admin.totp_secret, admin.email, "Machi ID admin")
    return render_template("admin/enrol.html", invited=admin, token=token, error=error,
                           qr=totp.qr_data_uri(uri), secret=totp.group(admin.totp_secret),
                           min_password=service.MIN_PASSWORD), 400 if error else 200
