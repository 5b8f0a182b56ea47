"""The consent page: what the company will receive, and the resident's decision
(the ``consent`` check of ``idp.interaction.policy``)."""

from __future__ import annotations

from flask import render_template
from flask import request
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from idp.consent import service as consent_service
from idp.consent.items import OPT_IN_SCOPES
from idp.consent.items import REQUIRED_SCOPES
from idp.consent.items import display_values
from idp.consent.items import item_of
from idp.consent.items import items_for
from idp.consent.models import Consent
from idp.exchange import links
from idp.extensions import commit_on_error
from idp.interaction import flow
from idp.interaction.flow import Pending
from idp.interaction.views import bp
from idp.terms import service as terms


@bp.route("/consent/<uid>", methods=["GET", "POST"])
def consent(uid: str):
    """Show what the company will receive; record the resident's decision."""
    pending = flow.pending_consent(uid)
    if not isinstance(pending, Pending):
        return pending
    if request.method == "GET":
        return _render_consent(uid, pending)
    decision = request.form.get("decision")
    expiry = request.form.get("link_expiry") or None
    if decision not in ("allow", "deny") or (expiry is not None
                                             and expiry not in links.EXPIRY_CHOICES):
        return _render_consent(uid, pending, status=400)
    commit_on_error()  # whatever the answer, the decision and its audit record stand
    return flow.decide(uid, pending, decision == "allow", request.form.getlist("scope"),
                       expiry)


def _render_consent(uid: str, pending: Pending, status: int = 200):
    previous = consent_service.find(pending.resident.id, pending.client.id)
    items = [
        {
            "scope": item.scope,
            "label": str(item.label),
            "detail": str(item.detail),
            "required": item.scope in REQUIRED_SCOPES,
            "checked": ticked(item.scope, previous),
            "value": display_values(pending.resident, item.scope),
            **registered_item(pending.resident.id, item.scope),
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
        terms_version=current_terms.version,
        resident=pending.resident,
        form_action=url_for("interaction.consent", uid=uid),
        link_expiry=expiry_choices() if any(i["registered"] for i in items) else None,
    ), status


def ticked(scope: str, previous: Consent | None) -> bool:
    """Whether an item's box starts ticked when a service asks (again).

    Required items always are. An item the resident declined (unticked) the last time
    comes back unticked, even after a withdrawal, an expiry or new terms: declining is
    the resident's choice until they tick it. Continued access (``offline_access``) is
    ticked only while the resident's consent in force grants it."""
    if scope in REQUIRED_SCOPES:
        return True
    declined = {item_of(s) for s in previous.declined_scopes} if previous is not None else set()
    if scope in declined:
        return False
    if scope in OPT_IN_SCOPES:  # ticked only when the resident chose it before
        return previous is not None and previous.withdrawn_at is None \
            and scope in previous.scopes
    return True


def registered_item(resident_id: str, scope: str) -> dict:
    """Item 5 of the draft terms for a ``registered:<category>`` scope: the source
    companies by name and the value each would send (none held yet: an empty list)."""
    keys = links.category_keys([scope])
    if not keys:
        return {"registered": False, "sources": []}
    return {"registered": True,
            "sources": [{"company": source.company.name, "value": links.display(source.value)}
                        for source in links.sources(resident_id, keys[0])]}


def expiry_choices() -> list[dict]:
    labels = {"90d": _("3 months"), "365d": _("1 year"), "withdrawn": _("Until I withdraw it")}
    return [{"value": value, "label": labels[value], "selected": value == links.DEFAULT_EXPIRY}
            for value in links.EXPIRY_CHOICES]


def _purpose(client) -> str:
    if str(get_locale()) == "en" and client.purpose_en:
        return client.purpose_en
    return client.purpose
