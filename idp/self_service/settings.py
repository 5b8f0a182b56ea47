"""``/account``: the consortium ID, registered information, email address,
password, two-step verification and deletion."""

from __future__ import annotations

import time

from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _

from idp.accounts import passkeys
from idp.accounts import profile as profile_service
from idp.accounts import statistics
from idp.accounts import totp
from idp.accounts.service import ResidentError
from idp.extensions import db
from idp.interaction import flow
from idp.mail import service as mail
from idp.privacy import deletion
from idp.security import totp as otp
from idp.self_service import bp
from idp.self_service import forms
from idp.self_service import limit_by_resident
from idp.self_service import resident_required
from idp.terms import service as terms_service

TOTP_SETUP = "totp_setup"
TOTP_SETUP_TTL = 600


@bp.get("/account")
@resident_required
def overview():
    """The consortium ID and what can be done with it."""
    resident = g.resident
    return render_template(
        "account/overview.html", resident=resident,
        terms_outdated=terms_service.needs_acceptance(resident),
        statistics_opt_out=statistics.statistics_opt_out(resident),
        recovery_codes_left=totp.recovery_codes_left(resident.id)
        if resident.totp_enabled else None)


@bp.post("/account/statistics")
@resident_required
def statistics_choice():
    """Leave the city's statistics, or come back into them (seed 002)."""
    opt_out = request.form.get("statistics_opt_out") == "yes"
    if statistics.set_statistics_opt_out(g.resident, opt_out, via="account"):
        flash(_("You are left out of the city's statistics from now on.") if opt_out
              else _("You are counted in the city's de-identified statistics again."),
              "success")
    else:
        flash(_("Nothing was changed."), "success")
    return redirect(url_for("account.overview"), 303)


@bp.route("/account/profile", methods=["GET", "POST"])
@resident_required
def profile():
    """View and edit the registered information (every item optional)."""
    resident = g.resident
    if request.method == "GET":
        return render_template("account/profile.html",
                               values=forms.profile_form_values(resident), errors={})
    parsed, errors = forms.parse_profile(request.form)
    if errors:
        return render_template("account/profile.html",
                               values=forms.typed_values(request.form), errors=errors), 400
    changed = profile_service.update_profile(resident, parsed)
    flash(_("Your registered information has been saved. Services receive the new "
            "information the next time they ask for it.") if changed
          else _("Nothing was changed."), "success")
    return redirect(url_for("account.overview"), 303)


@bp.route("/account/email", methods=["GET", "POST"])
@resident_required
@limit_by_resident
def email():
    """Change the email address; it takes effect once the new address is verified."""
    resident = g.resident
    if request.method == "GET":
        return render_template("account/email.html", resident=resident, new_email="",
                               errors={})
    new_email, errors = forms.parse_email(request.form, "new_email")
    password = request.form.get("password", "")
    if not errors:
        try:
            message = profile_service.request_email_change(resident, new_email, password)
        except profile_service.ProfileError as error:
            errors = {"password": _("The password is not correct.")} \
                if error.reason == "bad_password" else {
                "new_email": _("This is already your email address.")}
    if errors:
        db.session.rollback()
        return render_template("account/email.html", resident=resident,
                               new_email=forms.value(request.form, "new_email"),
                               errors=errors), 400
    mail.queue([message])
    flash(_("We have sent a link to %(address)s. Your address changes when you open it.",
            address=new_email), "success")
    return redirect(url_for("account.overview"), 303)


@bp.post("/account/email/resend")
@resident_required
@limit_by_resident
def email_resend():
    """Send the verification link again (pending change, or unverified address)."""
    resident = g.resident
    address = profile_service.address_to_verify(resident)
    if address is None:
        flash(_("Your email address is already verified."), "info")
        return redirect(url_for("account.overview"), 303)
    mail.queue([profile_service.verification_mail(resident, address)])
    flash(_("We have sent a link to %(address)s.", address=address), "success")
    return redirect(url_for("account.overview"), 303)


@bp.post("/account/email/cancel")
@resident_required
def email_cancel():
    """Give up a pending change of address (its link stops working)."""
    profile_service.cancel_email_change(g.resident)
    flash(_("The change of email address was cancelled."), "success")
    return redirect(url_for("account.overview"), 303)


@bp.route("/account/password", methods=["GET", "POST"])
@resident_required
def password():
    """Change the password: the current one is required."""
    resident = g.resident
    if request.method == "GET":
        return render_template("account/password.html", errors={})
    new, errors = forms.parse_new_password(request.form, resident.email)
    if not errors:
        try:
            message = profile_service.change_password(
                resident, request.form.get("current_password", ""), new,
                flow.browser_session())
        except profile_service.ProfileError:
            errors = {"current_password": _("The current password is not correct.")}
        except ResidentError:
            errors = {"new_password": _("This password cannot be used.")}
    if errors:
        db.session.rollback()
        return render_template("account/password.html", errors=errors), 400
    mail.queue([message])
    flash(_("Your password has been changed. You have been signed out on your other "
            "devices."), "success")
    return redirect(url_for("account.overview"), 303)


# ---- two-step verification ------------------------------------------------------

@bp.get("/account/security")
@resident_required
def security():
    """Passkeys, and two-step verification: status, turn on or off, recovery codes."""
    resident = g.resident
    return render_template("account/security.html", resident=resident,
                           passkeys=passkeys.passkeys_of(resident.id),
                           recovery_codes_left=totp.recovery_codes_left(resident.id)
                           if resident.totp_enabled else None)


def _setup_secret(renew: bool = False) -> str:
    """The secret being enrolled in this browser, kept while the resident scans it."""
    item = session.get(TOTP_SETUP)
    if renew or not isinstance(item, dict) or item.get("t", 0) + TOTP_SETUP_TTL <= time.time():
        item = {"s": otp.new_secret(), "t": time.time()}
        session[TOTP_SETUP] = item
    return item["s"]


def _render_setup(resident, error: dict | None = None, status: int = 200):
    secret = _setup_secret()
    uri = totp.provisioning_uri(secret, resident)
    return render_template("account/totp_setup.html", qr=otp.qr_data_uri(uri),
                           secret=otp.group(secret), errors=error or {}), status


@bp.route("/account/security/totp", methods=["GET", "POST"])
@resident_required
def totp_setup():
    """Turn on two-step verification: scan, type a code, keep the recovery codes."""
    resident = g.resident
    if resident.totp_enabled:
        return redirect(url_for("account.security"))
    if request.method == "GET":
        return _render_setup(resident)
    try:
        codes = totp.enable(resident, _setup_secret(), forms.value(request.form, "code"),
                            request.form.get("password", ""))
    except totp.TotpError as error:
        db.session.rollback()
        message = {"bad_password": {"password": _("The password is not correct.")},
                   "bad_code": {"code": _("The code is not correct. Check the time on your "
                                          "phone and enter the code now shown.")}}
        return _render_setup(resident, message.get(error.reason, {}), 400)
    session.pop(TOTP_SETUP, None)
    return render_template("account/recovery_codes.html", codes=codes, new=True)


@bp.post("/account/security/totp/disable")
@resident_required
def totp_disable():
    """Turn two-step verification off (the password is required)."""
    resident = g.resident
    try:
        totp.disable(resident, request.form.get("password", ""))
    except totp.TotpError:
        db.session.rollback()
        flash(_("The password is not correct. Two-step verification is still on."), "error")
        return redirect(url_for("account.security"), 303)
    flash(_("Two-step verification is off."), "success")
    return redirect(url_for("account.security"), 303)


@bp.post("/account/security/recovery-codes")
@resident_required
def recovery_codes():
    """Replace the recovery codes (the old ones stop working)."""
    resident = g.resident
    try:
        codes = totp.regenerate_recovery_codes(resident, request.form.get("password", ""))
    except totp.TotpError:
        db.session.rollback()
        flash(_("The password is not correct. Your recovery codes were not changed."), "error")
        return redirect(url_for("account.security"), 303)
    return render_template("account/recovery_codes.html", codes=codes, new=False)


# ---- deletion ------------------------------------------------------------------------

@bp.route("/account/delete", methods=["GET", "POST"])
@resident_required
def delete():
    """Delete the consortium ID for good, after the password is entered again."""
    resident = g.resident
    if request.method == "GET":
        return render_template("account/delete.html", error=None)
    try:
        goodbye = deletion.delete_resident(resident, request.form.get("password", ""))
    except profile_service.ProfileError:
        db.session.rollback()
        return render_template("account/delete.html",
                               error=_("The password is not correct. Nothing was deleted.")), 400
    flow.sign_out("account_deleted")  # the session row is gone; drop the cookie's content too
    mail.queue([goodbye])
    return render_template(
        "account/notice.html", title=_("Your consortium ID has been deleted"),
        message=_("Your registered information, consents and history have been deleted, and "
                  "no service can receive information about you any more. For information "
                  "already provided to a service, contact the company that provides it."),
        link=("/", _("Go to the Machi ID home page")))
