"""Consortium terms of use, signing keys, and admin accounts."""

from __future__ import annotations

import datetime as dt

from flask import g
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _

from idp import config
from idp.admin import service as admins
from idp.admin import stats
from idp.admin.views import action
from idp.admin.views import admin_required
from idp.admin.views import bp
from idp.admin.views import done
from idp.admin.views import refusable
from idp.admin.views import refused
from idp.keys import service as keys
from idp.outbox import service as outbox
from idp.terms import service as terms

# ---- terms of use -------------------------------------------------------------------

@bp.get("/terms")
@admin_required
def terms_page():
    """Published versions, the one in force, and the form to publish a new one."""
    return render_template("admin/terms.html", versions=terms.versions(),
                           current=terms.current(), draft=terms.newest_text())


def _local_datetime(value: str) -> dt.datetime | None:
    """``YYYY-MM-DDTHH:MM`` in Japan time (an HTML datetime-local input), or None."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise terms.TermsError(_("the time must look like 2026-04-01T09:00")) from None
    return parsed.replace(tzinfo=stats.TIMEZONE) if parsed.tzinfo is None else parsed


@bp.post("/terms")
@action(fresh=True)
@refusable("terms:publish", terms.TermsError, back=lambda: url_for("admin.terms_page"))
def terms_publish():
    """Publish a new version: from its effective time every resident must accept it."""
    row = terms.publish_terms(
        request.form.get("version", ""), request.form.get("url", ""),
        summary=request.form.get("summary", ""),
        summary_en=request.form.get("summary_en", ""),
        text=request.form.get("text", ""), text_en=request.form.get("text_en", ""),
        effective_at=_local_datetime(request.form.get("effective_at", "")),
        actor="admin")
    return done(_("Version %(version)s is published. Residents accept it at their next "
                  "sign-in.", version=row.version), url_for("admin.terms_page"))


# ---- signing keys ---------------------------------------------------------------------

@bp.get("/keys")
@admin_required
def keys_page():
    """Every signing key and its state."""
    return render_template("admin/keys.html", keys=keys.describe(),
                           delay_hours=config.settings().key_publish_delay // 3600)


@bp.post("/keys/rotate")
@action(fresh=True)
def keys_rotate():
    """New keys: published now, signing after the publish delay (or at once)."""
    mode = request.form.get("mode", "scheduled")
    created = keys.rotate(immediately=mode in ("now", "drop_old"), drop_old=mode == "drop_old",
                          actor="admin")
    return done(_("New keys %(kids)s were added.", kids=", ".join(k.kid[:12] for k in created)),
                url_for("admin.keys_page"))


@bp.post("/keys/<kid>/retire")
@action(fresh=True)
@refusable("key:retire", keys.SigningKeyError, back=lambda kid: url_for("admin.keys_page"),
           ids=lambda kid: {"key": kid[:64]})
def key_retire(kid: str):
    """Stop signing with one key (and with "drop", remove it from JWKS at once)."""
    keys.retire(kid, drop=request.form.get("drop") == "yes", actor="admin")
    return done(_("Key %(kid)s is retired.", kid=kid[:12]), url_for("admin.keys_page"))


# ---- deliveries (idp.outbox) --------------------------------------------------------

@bp.get("/outbox")
@admin_required
def outbox_page():
    """Dead letters: messages given up on, of every kind (back-channel logout tokens and
    security events to services, mail to residents)."""
    kinds = {"backchannel_logout": _("Back-channel logout token"),
             "security_event": _("Security event"), "mail": _("Mail")}
    return render_template("admin/outbox.html", dead=outbox.dead_letters(), kinds=kinds)


@bp.post("/outbox/<int:message_id>/retry")
@action()
def outbox_retry(message_id: int):
    """Queue a dead letter again, e.g. once the service's endpoint is fixed."""
    back = url_for("admin.outbox_page")
    if outbox.retry(message_id) is None:
        return refused("outbox:retry", LookupError(_("no such message")), back)
    return done(_("Message %(id)s is queued again.", id=message_id), back)


# ---- admins -----------------------------------------------------------------------------

@bp.get("/admins")
@admin_required
def admins_page():
    return render_template("admin/admins.html", admins=admins.list_admins())


def _admins_page(**_view_args) -> str:
    return url_for("admin.admins_page")


def _link_page(admin, token: str, status: str):
    return render_template("admin/enrolment_link.html", target=admin,
                           url=admins.enrolment_url(token), status=status,
                           expires_at=admin.enrolment_expires_at)


@bp.post("/admins")
@action(fresh=True)
@refusable("admin:create", admins.AdminError, back=_admins_page)
def admin_invite():
    """Invite an admin: the one-time enrolment link is shown once."""
    admin, token = admins.create_admin(request.form.get("email", ""), actor="admin")
    return _link_page(admin, token, "invited")


@bp.post("/admins/<admin_id>/reset")
@action(fresh=True)
@refusable("admin:reset", admins.AdminError, back=_admins_page)
def admin_reset(admin_id: str):
    """A new enrolment link (lost phone or password); sessions end."""
    if admin_id == g.admin.id:
        raise admins.AdminError(_("you cannot reset your own account here; ask another "
                                  "admin or use the idp command"))
    admin, token = admins.reset_admin(admin_id, actor="admin")
    return _link_page(admin, token, "reset")


@bp.post("/admins/<admin_id>/disable")
@action(fresh=True)
@refusable("admin:disable", admins.AdminError, back=_admins_page)
def admin_disable(admin_id: str):
    admin = admins.disable_admin(admin_id, actor="admin", acting_admin_id=g.admin.id)
    return done(_("%(email)s can no longer sign in.", email=admin.email), _admins_page())
