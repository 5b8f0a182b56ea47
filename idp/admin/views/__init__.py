"""The admin console (blueprint ``admin``, under ``/admin``).

- ``session``    sign-in (password and TOTP), sign-out, re-authentication, enrolment;
- ``dashboard``  counts and charts;
- ``companies``  admission, contracts, suspension, reinstatement, revocation;
- ``clients``    clients and kiosks: registration, settings, secret rotation, revocation;
- ``system``     consortium terms of use, signing keys, admin accounts;
- ``records``    the audit trail (filters, CSV, chain verification), usage reports,
                 identity proofing;
- ``exchange``   categories of registered data, data-use contracts and the usage
                 reports companies submit under them, the monitoring's alerts.

Rules every view follows:

- only a live admin session gets in (``admin_required``); its own cookie,
  ``machi_id_admin``: HttpOnly, SameSite=Strict, path ``/admin``, Secure
  under https, separate from the residents' session;
- every POST passes the app's CSRF check and, for actions, consumes a form
  token that works once (``action``; both idp.security.csrf), so a forged or
  replayed post changes nothing and is audited (``admin:form:rejected``);
- destructive actions also need a recent password or TOTP check
  (``action(fresh=True)`` → ``/admin/reauth``);
- a refused action (unknown company, revoked client …) rolls back, is audited
  (``admin:action:refused``) and answered with the reason, never a 500;
- every event written during the request names the admin
  (``g.audit_admin_id``, ``idp.audit.service.record``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint
from flask import abort
from flask import flash
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from idp.admin import auth
from idp.admin import stats
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.errors import error_page
from idp.errors import form_expired
from idp.extensions import commit_on_error
from idp.extensions import db

bp = Blueprint("admin", __name__, url_prefix="/admin")
COOKIE = "machi_id_admin"


@bp.before_request
def load_admin():
    g.admin_session = auth.load_session(request.cookies.get(COOKIE))
    g.admin = g.admin_session.admin if g.admin_session is not None else None
    if g.admin is not None:
        g.audit_admin_id = g.admin.id


@bp.app_template_filter("admin_time")
def admin_time(value) -> str:
    """A timestamp in Japan time, to the second (the console's clock)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return value.astimezone(stats.TIMEZONE).strftime("%Y-%m-%d %H:%M:%S")


@bp.app_template_filter("audit_data")
def audit_data(value, indent: int | None = None) -> str:
    """An event's details as readable JSON (escaped by the template like any text)."""
    return json.dumps(value or {}, ensure_ascii=False, sort_keys=True, indent=indent)


SUMMARY_VALUE = 60


@bp.app_template_filter("audit_summary")
def audit_summary(value) -> list[tuple[str, str]]:
    """An event's details as (key, value) pairs to read at a glance: lists joined by
    commas, nested objects as their keys, long values cut (the raw JSON stays next to
    it, ``audit_data``)."""
    pairs = []
    for key, item in sorted((value or {}).items()):
        if isinstance(item, list):
            text = ", ".join(str(x) for x in item) or "—"
        elif isinstance(item, dict):
            text = ", ".join(sorted(map(str, item))) or "—"
        elif isinstance(item, bool):
            text = _("yes") if item else _("no")
        else:
            text = "—" if item is None else str(item)
        pairs.append((key.replace("_", " "),
                      text if len(text) <= SUMMARY_VALUE else text[:SUMMARY_VALUE - 1] + "…"))
    return pairs


@bp.context_processor
def admin_context():
    def form_token() -> str:
        return auth.new_form_token(g.admin_session) if g.get("admin_session") else ""

    return {"admin": g.get("admin"), "form_token": form_token,
            "return_to": request.full_path.rstrip("?") if request.method == "GET"
            else request.path}


@bp.after_request
def keep_form_tokens(response):
    """Form tokens made while rendering the page are rows: keep them, also on a
    4xx page. The request's unit of work (``idp.extensions``) commits after this hook;
    a failed request (5xx) commits nothing."""
    if g.get("admin_session") is not None and response.status_code < 500:
        commit_on_error()
    return response


@bp.errorhandler(CSRFError)
def csrf_failed(error: CSRFError):
    """A post without a valid CSRF token (forged, or a page left open too long)."""
    db.session.rollback()
    record(AuditTag.ADMIN_FORM_REJECTED, reason="csrf", path=request.path[:200])
    commit_on_error()
    return form_expired()


def safe_return(target: str | None, default: str) -> str:
    """A console path to go back to; anything else gives ``default``."""
    if not target or len(target) > 2000:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/admin") or "\\" in target \
            or any(ord(c) < 0x20 for c in target):
        return default
    return target


# What an admin who must enrol a passkey (admin_passkey_required) can still reach.
PASSKEY_ENROLMENT = {"admin.passkeys", "admin.passkey_options", "admin.passkey_add",
                     "admin.logout", "admin.reauth"}


def admin_required(view):
    """Signed-in admins only; others go to the sign-in page and come back."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        row = g.get("admin_session")
        if row is None:
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("admin.login", next=target), 303)
        auth.touch(row)
        if request.endpoint not in PASSKEY_ENROLMENT and auth.must_enrol_passkey(row.admin):
            db.session.commit()
            return redirect(url_for("admin.passkeys"), 303)
        # Its own transaction: the activity counts even when the action is then
        # refused and rolled back (``refused``).
        db.session.commit()
        return view(*args, **kwargs)

    return wrapper


def action(fresh: bool = False, once: bool = True):
    """A state-changing POST by a signed-in admin (``admin_required``): a one-time form
    token, and with ``fresh`` a recent password or TOTP check. Nothing happens when either
    is missing."""

    def decorate(view):
        @admin_required
        @wraps(view)
        def wrapper(*args, **kwargs):
            row = g.admin_session
            back = safe_return(request.form.get("return_to"), url_for("admin.dashboard"))
            if fresh and not auth.fresh(row):
                flash(_("Please confirm it is you before this action."), "info")
                return redirect(url_for("admin.reauth", next=back), 303)
            if once:
                problem = auth.consume_form_token(row, request.form.get("form_token"))
                if problem is not None:
                    db.session.rollback()
                    record(AuditTag.ADMIN_FORM_REJECTED, reason=problem,
                           path=request.path[:200])
                    commit_on_error()
                    if problem == "replayed":
                        return error_page(409, _("This form was already sent"),
                                          _("Nothing was changed again. Reload the page to see "
                                            "the current state."))
                    return form_expired()
            return view(*args, **kwargs)

        return wrapper

    return decorate


def refused(what: str, error: Exception, back: str, **ids):
    """Roll the action back, audit the refusal and say why (the request's unit of work
    commits the refusal's audit record with the redirect)."""
    db.session.rollback()
    record(AuditTag.ADMIN_REFUSED, action=what, reason=str(error)[:300], **ids)
    flash(_("Not done: %(reason)s", reason=str(error)), "error")
    return redirect(back, 303)


def refusable(what: str, *errors: type[Exception], back: Callable[..., str],
              ids: Callable[..., dict[str, str]] | None = None):
    """An action view whose ``errors`` are refusals: the view just acts, and what it raises
    is answered by ``refused`` as ``what`` (formatted with the view's arguments), back to
    ``back(**view_args)``, the audit record naming ``ids(**view_args)``."""

    def decorate(view):
        @wraps(view)
        def wrapper(**kwargs):
            try:
                return view(**kwargs)
            except errors as error:
                return refused(what.format(**kwargs), error, back(**kwargs),
                               **(ids(**kwargs) if ids else {}))

        return wrapper

    return decorate


def confirmed(expected: str) -> bool:
    """The admin typed ``expected`` into the form's ``confirm`` field (for what cannot be
    undone)."""
    return request.form.get("confirm", "").strip() == expected


def found(row, what: str):
    """``row``; None ends the request with the console's 404 page for ``what``."""
    if row is None:
        abort(make_response(render_template("admin/not_found.html", what=what), 404))
    return row


def done(message: str, back: str):
    """Go back; the request's unit of work commits the action with the redirect (and the
    outbox then sends what the action queued: logout tokens, security events, mail)."""
    flash(message, "success")
    return redirect(back, 303)


from idp.admin.views import citydata  # noqa: E402,F401  (routes register on bp)
from idp.admin.views import clients  # noqa: E402,F401
from idp.admin.views import companies  # noqa: E402,F401
from idp.admin.views import dashboard  # noqa: E402,F401
from idp.admin.views import exchange  # noqa: E402,F401
from idp.admin.views import records  # noqa: E402,F401
from idp.admin.views import session  # noqa: E402,F401
from idp.admin.views import system  # noqa: E402,F401
