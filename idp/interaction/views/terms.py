"""The consortium's terms of use (the ``terms_accepted`` check of
``idp.interaction.policy``): read them, and accept or decline them when asked
to, before any authorization goes on.

``/terms`` shows the version in force in full (with a table of contents and
the list of versions); ``/terms/<version>`` any version in effect before, as it
was published. ``terms_page_url(version)`` is the template global every page
that asks for agreement links to."""

from __future__ import annotations

from flask import abort
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from idp import config
from idp.access import service as access
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.interaction import flow
from idp.interaction.views import bp
from idp.interaction.views.login import safe_next
from idp.terms import document
from idp.terms import service as terms_service


@bp.app_template_global()
def terms_page_url(version: str | None = None) -> str:
    """Where residents read the terms: the version in force, or ``version``."""
    if version and version != terms_service.current_version():
        return url_for("interaction.terms_version", version=version)
    return url_for("interaction.terms")


def _document(shown: terms_service.Terms, locale: str) -> document.Document:
    settings = config.settings()
    english = locale == "en"
    contact = settings.terms_contact or _("the contact published on this service")
    return document.parse(document.fill(
        shown.text_in(locale),
        consortium=settings.consortium_name_en if english else settings.consortium_name,
        contact=contact))


def _terms_context(shown: terms_service.Terms | None = None) -> dict:
    locale = str(get_locale())
    current = terms_service.current()
    shown = shown or current
    return {"terms": current, "summary": current.summary_in(locale), "shown": shown,
            "shown_summary": shown.summary_in(locale), "document": _document(shown, locale),
            "history": terms_service.history(), "locale": locale}


@bp.get("/terms/<version>")
def terms_version(version: str):
    """One version of the terms as it was published (any version in effect so far)."""
    shown = terms_service.find(version)
    if shown is None:
        abort(404)
    if shown.version == terms_service.current_version():
        return redirect(url_for("interaction.terms"))
    return render_template("account/terms.html", interaction_id=None, next_url=None,
                           asked=False, error=None, **_terms_context(shown))


@bp.route("/terms", methods=["GET", "POST"])
def terms():
    """The consortium's terms in force; accept or decline them when asked to."""
    resident = flow.current_resident()
    uid = flow.live_interaction(request.values.get("interaction"))
    next_url = safe_next(request.values.get("next"))
    if uid:
        g.ui_locale = flow.load_interaction(uid).get("locale")
    asked = resident is not None and terms_service.needs_acceptance(resident)
    context = dict(interaction_id=uid, next_url=next_url, asked=asked, error=None,
                   **_terms_context())
    if request.method == "GET":
        return render_template("account/terms.html", **context)
    if resident is None:
        return redirect(url_for("interaction.login", interaction=uid, next=next_url), 303)
    decision = request.form.get("decision")
    if decision == "decline":
        record(AuditTag.TERMS_DECLINE, resident_id=resident.id,
               version=context["terms"].version)
        response = flow.refuse(uid) if uid else None
        # Without the terms the ID cannot be used anywhere: every session of the
        # resident ends, and the services they signed in to are told.
        access.end_sessions(resident, "terms_declined")
        flow.sign_out("terms_declined")
        return response or render_template(
            "account/notice.html", title=_("You have signed out"),
            message=_("You cannot use your consortium ID without agreeing to the current terms "
                      "of use. You can sign in again at any time to agree to them, or to "
                      "download or delete your data."),
            link=("/", _("Go to the Machi ID home page")))
    if decision != "accept":
        abort(400)
    try:
        terms_service.accept(resident, request.form.get("version", ""))
    except terms_service.TermsError:
        context["error"] = _("The terms of use were updated while this page was open. Please "
                             "read the current version.")
        return render_template("account/terms.html", **context), 409
    if uid:
        return redirect(url_for("interaction.resume", uid=uid))
    return redirect(next_url or url_for("account.overview"))
