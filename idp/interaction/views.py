"""Login, consent, logout and language pages (``consent_ui/templates``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import Blueprint
from flask import current_app
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from idp import config
from idp.accounts import service as accounts
from idp.accounts import throttle
from idp.clients.models import Client
from idp.consent import service as consent_service
from idp.consent.items import REQUIRED_SCOPES
from idp.consent.items import display_values
from idp.consent.items import items_for
from idp.errors import error_page
from idp.extensions import commit_on_error
from idp.extensions import csrf
from idp.extensions import db
from idp.extensions import limiter
from idp.interaction import signin
from idp.interaction import state
from idp.interaction.locale import LOCALES
from idp.interaction.locale import from_ui_locales
from idp.oauth import authorize as flow
from idp.oauth.authorize import Pending
from idp.terms import service as terms

bp = Blueprint("interaction", __name__)


def _login_address_limit() -> str:
    return config.settings().login_address_limit


def app_make_response(*args):
    return current_app.make_response(args)

MAX_FIELD = 1024


@bp.get("/")
def index():
    """The IdP's home: who is signed in."""
    return render_template("index.html")


@bp.get("/authorize/continue/<uid>")
def resume(uid: str):
    """Continue an authorization request after the resident signed in."""
    commit_on_error()  # an error page keeps its audit record, as a redirect keeps its code
    return flow.resume(uid)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_address_limit, methods=["POST"], error_message="too many sign-in attempts")
def login():
    """Sign in with email and password; resumes the pending authorization request."""
    uid = request.values.get("interaction") or None
    item = state.load_interaction(uid) if uid else None
    if uid and item is None:
        return flow.expired_interaction()
    client = None
    hint = ""
    if item is not None:
        g.ui_locale = item.get("locale")
        args = flow.rebuild(item["query"]).args
        client = db.session.get(Client, args.get("client_id"))
        hint = (args.get("login_hint") or "")[:254]
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", email=hint, error=None, interaction_id=uid,
                               client=client, next_url=next_url)
    email = request.form.get("email", "")[:MAX_FIELD]
    password = request.form.get("password", "")[:MAX_FIELD]
    wait = throttle.retry_after(email) if email else None
    if wait is not None:
        # Growing delays per account (idp.accounts.throttle): checked before the
        # password, the same for addresses with and without an account.
        response = app_make_response(render_template(
            "login.html", email=email, interaction_id=uid, client=client, next_url=next_url,
            error=_("Too many attempts. Please wait %(seconds)s seconds and try again.",
                    seconds=wait)), 429)
        response.headers["Retry-After"] = str(wait)
        return response
    resident = accounts.authenticate(email, password) if email and password else None
    if resident is None:
        if email:
            throttle.failed(email)
        commit_on_error()  # keep the audit record of the failure
        return render_template(
            "login.html", email=email, interaction_id=uid, client=client, next_url=next_url,
            error=_("The email address or password is incorrect."),
        ), 401
    throttle.succeeded(email)
    return signin.after_password(resident, uid, next_url)


@bp.route("/consent/<uid>", methods=["GET", "POST"])
def consent(uid: str):
    """Show what the company will receive; record the resident's decision."""
    pending = flow.pending_consent(uid)
    if not isinstance(pending, Pending):
        return pending
    if request.method == "GET":
        return _render_consent(uid, pending)
    decision = request.form.get("decision")
    if decision not in ("allow", "deny"):
        return _render_consent(uid, pending, status=400)
    commit_on_error()  # whatever the answer, the decision and its audit record stand
    return flow.decide(uid, pending, decision == "allow", request.form.getlist("scope"))


def _render_consent(uid: str, pending: Pending, status: int = 200):
    previous = consent_service.find(pending.resident.id, pending.client.id)
    declined = set()
    if previous is not None and previous.withdrawn_at is None:
        declined = set(previous.declined_scopes)
    items = [
        {
            "scope": item.scope,
            "label": str(item.label),
            "detail": str(item.detail),
            "required": item.scope in REQUIRED_SCOPES,
            "checked": item.scope in REQUIRED_SCOPES or item.scope not in declined,
            "value": display_values(pending.resident, item.scope),
        }
        for item in items_for(pending.requested)
    ]
    current_terms = terms.current()
    client = pending.client
    return render_template(
        "consent.html",
        client=client,
        company=client.company,
        purpose=_purpose(client),
        items=items,
        interaction_id=uid,
        terms_url=current_terms.url,
        terms_version=current_terms.version,
        resident=pending.resident,
        form_action=url_for("interaction.consent", uid=uid),
    ), status


def _purpose(client) -> str:
    if str(get_locale()) == "en" and client.purpose_en:
        return client.purpose_en
    return client.purpose


@bp.route("/logout", methods=["GET", "POST"])
@csrf.exempt
def logout():
    """RP-initiated logout (OIDC RP-Initiated Logout 1.0) and the resident's own sign-out."""
    server = current_app.extensions["idp.oauth"]
    try:
        end = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return error_page(400, _("This sign-out request cannot be processed"),
                          _("The service sent an invalid sign-out request."),
                          detail=f"{error.error}: {error.description or ''}")
    g.ui_locale = from_ui_locales(end.ui_locales)
    if end.needs_confirmation:
        if request.method == "GET":
            hidden = {k: v for k, v in request.args.items()
                      if k in ("client_id", "post_logout_redirect_uri", "state", "ui_locales",
                               "id_token_hint")}
            return render_template("logout_confirm.html", client=end.client, hidden=hidden,
                                   form_action=url_for("interaction.logout"),
                                   other_session=end.other_session)
        # Without an id_token_hint of this session only our own form may end it.
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (ValidationError, CSRFError):
            return error_page(400, _("The form has expired"),
                                   _("Please go back, reload the page and try again."))
    response = server.create_endpoint_response("end_session", end)
    session.clear()
    return response or render_template("logged_out.html")


@bp.get("/lang/<code>")
def switch_locale(code: str):
    """Remember the resident's language and return to the page they were on."""
    if code in LOCALES:
        session["locale"] = code
        state.choose_locale(code)
    return redirect(safe_next(request.args.get("next")) or "/")


def safe_next(target: str | None) -> str | None:
    """A same-site path to return to, or None: never an open redirect."""
    if not target or len(target) > 2000:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or any(ord(c) < 0x20 for c in target):
        return None
    return target
