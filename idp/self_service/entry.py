"""Pages reachable without a session: registration, email links and password reset."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from idp import config
from idp.accounts import links
from idp.accounts import postal
from idp.accounts import profile as profile_service
from idp.accounts import recovery
from idp.accounts import registration
from idp.accounts import statistics
from idp.accounts.service import ResidentError
from idp.clients.models import Client
from idp.extensions import db
from idp.interaction import flow
from idp.mail import service as mail
from idp.self_service import bp
from idp.self_service import forms
from idp.self_service import limit_by_address
from idp.self_service import limit_by_target
from idp.terms import service as terms_service

CLAUSES = ("agree_provision", "agree_collection", "agree_terms")


def _clause_missing(name: str) -> str:
    """The error for an unticked clause, naming it (the summary lists all three)."""
    if name == "agree_provision":
        return _("Agree that your consortium ID and registered information are provided to "
                 "member companies with your consent.")
    if name == "agree_collection":
        return _("Agree that information obtained through member companies' services is "
                 "collected by the consortium.")
    return _("Read the terms of use and agree to them.")


def _sender_domain() -> str:
    """The domain our mail comes from, for residents whose carrier filters mail."""
    return config.settings().mail_sender.rpartition("@")[2]


def _locale() -> str:
    return str(get_locale())


def _terms_context() -> dict:
    current = terms_service.current()
    return {"terms": current, "summary": current.summary_in(_locale())}


def link_problem(reason: str, purpose: str):
    return render_template("account/link_problem.html", reason=reason, purpose=purpose), 400


# ---- registration -------------------------------------------------------------

@bp.route("/register", methods=["GET", "POST"])
@limit_by_address
@limit_by_target
def register():
    """Step 1: the address. The same answer whether or not it is registered."""
    if flow.current_resident() is not None:
        return redirect(url_for("account.overview"))
    uid = flow.live_interaction(request.values.get("interaction"))
    if request.method == "GET":
        return render_template("account/register.html", email="", errors={}, interaction_id=uid)
    email, errors = forms.parse_email(request.form)
    if errors:
        return render_template("account/register.html", email=forms.value(request.form, "email"),
                               errors=errors, interaction_id=uid), 400
    message = registration.request_registration(email, _locale(), uid)
    mail.queue([message])
    return render_template(
        "account/mail_sent.html", email=email, kind="register",
        hours=links.ttl(links.REGISTER) // 3600, sender_domain=_sender_domain())


def _terms_changed() -> str:
    return _("The terms of use were updated while you were filling in the form. Please read "
             "them and agree again.")


def _registration_form(context: dict, errors: dict, agreed: set[str]):
    agreed = agreed - ({"agree_terms"} if "agree_terms" in errors else set())
    return render_template("account/register_complete.html",
                           values=forms.typed_values(request.form), errors=errors,
                           agreed=agreed,
                           statistics_opt_out=request.form.get("statistics_opt_out") == "yes",
                           **context), 400


@bp.route("/register/complete", methods=["GET", "POST"])
def register_complete():
    """Step 2: password, profile and the terms; issues the consortium ID."""
    token = request.values.get("token", "")
    try:
        invitation = registration.read_invitation(token)
    except links.LinkError as error:
        return link_problem(error.reason, links.REGISTER)
    context = dict(token=token, email=invitation.email, **_terms_context())
    if request.method == "GET":
        return render_template("account/register_complete.html", values={}, errors={},
                               agreed=set(), **context)
    profile, errors = forms.parse_profile(request.form)
    password, password_errors = forms.parse_new_password(request.form, invitation.email,
                                                         "password", "password_confirm")
    errors.update(password_errors)
    agreed = {name for name in CLAUSES if request.form.get(name) == "yes"}
    for name in CLAUSES:
        if name not in agreed:
            errors[name] = _clause_missing(name)
    version = request.form.get("terms_version", "")
    if not errors and version != context["terms"].version:
        errors["agree_terms"] = _terms_changed()
    if errors:
        return _registration_form(context, errors, agreed)
    try:
        resident = registration.complete_registration(invitation, password, profile, version,
                                                      _locale())
    except links.LinkError as error:
        return link_problem(error.reason, links.REGISTER)
    except registration.RegistrationError:  # new terms took effect this very moment
        db.session.rollback()
        return _registration_form(context, {"agree_terms": _terms_changed()}, agreed)
    except (ResidentError, IntegrityError):
        # The address was registered meanwhile (a second tab used the same link, or a
        # parallel request won the unique index).
        db.session.rollback()
        return link_problem("used", links.REGISTER)
    if request.form.get("statistics_opt_out") == "yes":
        statistics.set_statistics_opt_out(resident, True, via="registration")
    row = flow.sign_in(resident)
    if invitation.interaction and flow.load_interaction(invitation.interaction):
        flow.mark_logged_in(invitation.interaction, row)
    mail.queue([registration.welcome(resident)])
    return redirect(url_for("account.register_done", interaction=invitation.interaction))


@bp.get("/postal-code")
def postal_code():
    """The municipality of a postal code (Japan Post's data, offline), for the form's
    script; the form works the same without it."""
    place = postal.lookup(request.args.get("code", ""))
    if place is None:
        return jsonify(error="not_found"), 404
    return jsonify(postal_code=place.postal_code, prefecture=place.prefecture,
                   locality=place.locality)


@bp.get("/register/done")
def register_done():
    """The new consortium ID, shown once registration succeeded."""
    resident = flow.current_resident()
    if resident is None:
        return redirect(url_for("interaction.login"))
    uid = flow.live_interaction(request.values.get("interaction"))
    client = None
    if uid:
        item = flow.load_interaction(uid)
        client = db.session.get(Client, flow.request_args(item).get("client_id"))
    return render_template("account/register_done.html", resident=resident,
                           interaction_id=uid, client=client)


# ---- email verification -----------------------------------------------------

def from_mailed_link(read: Callable, kind: str):
    """A page opened from a mailed link (``?token=``, kept in the form on POST): the view
    gets the token, the resident and the link's payload that ``read`` finds; a link that
    is (or turns out while acting to be) expired or used gets the page saying so."""

    def decorate(view):
        @wraps(view)
        def wrapper():
            token = request.values.get("token", "")
            try:
                resident, payload = read(token)
                return view(token, resident, payload)
            except links.LinkError as error:
                return link_problem(error.reason, kind)

        return wrapper

    return decorate


@bp.route("/verify-email", methods=["GET", "POST"])
@from_mailed_link(lambda token: profile_service.read_verification(token), links.VERIFY_EMAIL)
def verify_email(token: str, resident, payload: dict):
    """Confirm an address from the mailed link (a button, so scanners cannot use it up)."""
    if request.method == "GET":
        return render_template("account/verify_email.html", token=token, address=payload["e"])
    try:
        messages = profile_service.verify_email(resident, payload)
    except profile_service.ProfileError:
        return render_template("account/notice.html", title=_("This address cannot be used"),
                               message=_("Another consortium ID uses this address now. Your "
                                         "address was not changed."), status="error"), 409
    mail.queue(messages)
    return render_template(
        "account/notice.html", title=_("Your email address is verified"),
        message=_("%(address)s is now the verified address of your consortium ID.",
                  address=payload["e"]),
        link=(url_for("account.overview"), _("Go to your account")))


# ---- password reset -------------------------------------------------------------

@bp.route("/password/reset", methods=["GET", "POST"])
@limit_by_address
@limit_by_target
def reset_request():
    """Ask for a reset link. The same answer whether or not the address is registered."""
    if request.method == "GET":
        return render_template("account/reset_request.html", email="", errors={})
    email, errors = forms.parse_email(request.form)
    if errors:
        return render_template("account/reset_request.html",
                               email=forms.value(request.form, "email"), errors=errors), 400
    message = recovery.request_reset(email, _locale())
    mail.queue([message])
    return render_template(
        "account/mail_sent.html", email=email, kind="reset",
        minutes=links.ttl(links.RESET_PASSWORD) // 60, sender_domain=_sender_domain())


@bp.route("/password/reset/confirm", methods=["GET", "POST"])
@from_mailed_link(lambda token: recovery.read_reset(token), links.RESET_PASSWORD)
def reset_confirm(token: str, resident, payload: dict):
    """Choose a new password from the mailed link."""
    if request.method == "GET":
        return render_template("account/reset_confirm.html", token=token, errors={})
    password, errors = forms.parse_new_password(request.form, resident.email)
    if errors:
        return render_template("account/reset_confirm.html", token=token, errors=errors), 400
    mail.queue([recovery.reset_password(resident, payload, password)])
    return render_template(
        "account/notice.html", title=_("Your password has been changed"),
        message=_("You have been signed out everywhere, and services you use will need you to "
                  "sign in again. Sign in with your new password."),
        link=(url_for("interaction.login"), _("Sign in")))
