"""The consent page: what the company will receive, and the resident's decision
(the ``consent`` check of ``idp.interaction.policy``)."""

from __future__ import annotations

from flask import render_template
from flask import request
from flask import url_for
from flask_babel import get_locale

from idp.consent import service as consent_service
from idp.consent.items import REQUIRED_SCOPES
from idp.consent.items import display_values
from idp.consent.items import items_for
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
