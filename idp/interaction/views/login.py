"""The login page, the IdP's home and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _

from idp import config
from idp.accounts import service as accounts
from idp.clients.models import Client
from idp.extensions import commit_on_error
from idp.extensions import db
from idp.extensions import limiter
from idp.interaction import flow
from idp.interaction import signin
from idp.interaction.views import bp
from idp.locales import LOCALES
from idp.security import throttle


def _login_address_limit() -> str:
    return config.settings().login_address_limit


def app_make_response(*args):
    return current_app.make_response(args)

MAX_FIELD = 1024


@bp.get("/")
def index():
    """The IdP's home: who is signed in."""
    return render_template("index.html")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_address_limit, methods=["POST"], error_message="too many sign-in attempts")
def login():
    """Sign in with email and password; resumes the pending authorization request."""
    uid = request.values.get("interaction") or None
    item = flow.load_interaction(uid) if uid else None
    if uid and item is None:
        return flow.gone(uid)
    client = None
    hint = ""
    passkey_only = flow.passkey_required(item)
    if item is not None:
        g.ui_locale = item.get("locale")
        args = flow.request_args(item)
        client = db.session.get(Client, args.get("client_id"))
        hint = (args.get("login_hint") or "")[:254]
    next_url = safe_next(request.values.get("next"))
    # Reached from a signage kiosk (/device → here → /device/confirm): say which service
    # and which place the sign-in is for.
    device = flow.device_request() if next_url == url_for("device.confirm") else None
    if device is not None:
        client = device[0]
    kiosk = device[1] if device is not None else None
    if request.method == "GET":
        return render_template("login.html", email=hint, error=None, interaction_id=uid,
                               client=client, kiosk=kiosk, next_url=next_url,
                               passkey_only=passkey_only)
    email = request.form.get("email", "")[:MAX_FIELD]
    password = request.form.get("password", "")[:MAX_FIELD]
    wait = throttle.retry_after(email) if email else None
    if wait is not None:
        # Growing delays per account (idp.security.throttle): checked before the
        # password, the same for addresses with and without an account.
        response = app_make_response(render_template(
            "login.html", email=email, interaction_id=uid, client=client, kiosk=kiosk,
            next_url=next_url,
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
            "login.html", email=email, interaction_id=uid, client=client, kiosk=kiosk,
            next_url=next_url,
            error=_("The email address or password is incorrect."),
        ), 401
    throttle.succeeded(email)
    return signin.after_password(resident, uid, next_url)


@bp.get("/lang/<code>")
def switch_locale(code: str):
    """Remember the resident's language and return to the page they were on."""
    if code in LOCALES:
        session["locale"] = code
        flow.choose_locale(code)
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
