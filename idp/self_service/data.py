"""The resident's data: consents (各サービスでのデータ利用) and their receipts,
the usage history, and the export."""

from __future__ import annotations

import json

from flask import Response
from flask import abort
from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.consent import receipts
from idp.consent import service as consent_service
from idp.consent.items import REQUIRED_SCOPES
from idp.consent.items import items_for
from idp.consent.models import Consent
from idp.db import utcnow
from idp.exchange import categories
from idp.exchange import links
from idp.extensions import db
from idp.privacy import history as history_service
from idp.privacy.export import export as export_data
from idp.self_service import bp
from idp.self_service import resident_required
from idp.terms import service as terms_service


def _consents(resident_id: str) -> tuple[list[dict], list[dict]]:
    """(current, withdrawn) consents, each with its items, state and receipts."""
    now = utcnow()
    version = terms_service.current_version()
    by_client: dict[str, list] = {}
    for receipt in receipts.for_resident(resident_id):
        by_client.setdefault(receipt.client_id, []).append(receipt)
    links_by_client: dict[str, list] = {}
    for link in links.for_resident(resident_id):
        links_by_client.setdefault(link.client_id, []).append(link)
    current, withdrawn = [], []
    rows = db.session.scalars(select(Consent).where(Consent.resident_id == resident_id)
                              .order_by(Consent.granted_at.desc()))
    for consent in rows:
        client = consent.client
        if consent.withdrawn_at is not None:
            status = "withdrawn"
        elif not client.is_active:
            status = "disconnected"
        elif consent.expires_at <= now:
            status = "expired"
        elif consent.terms_version != version:
            status = "terms_changed"
        else:
            status = "in_force"
        items = [{"scope": i.scope, "label": str(i.label),
                  "optional": i.scope not in REQUIRED_SCOPES} for i in items_for(consent.scopes)]
        # One item can be stopped alone while another optional one stays; the last
        # goes with the whole consent (withdraw).
        stoppable = status == "in_force" and sum(i["optional"] for i in items) > 1
        entry = {"consent": consent, "client": client, "company": client.company,
                 "items": [{**i, "stoppable": stoppable and i["optional"]} for i in items],
                 "status": status, "receipts": by_client.get(client.id, []),
                 "links": [_link(link, now) for link in links_by_client.get(client.id, [])]}
        (withdrawn if status == "withdrawn" else current).append(entry)
    return current, withdrawn


def _link(link, now) -> dict:
    """A data link as the page shows it: source → recipient, category, purpose, expiry."""
    category = categories.get(link.category)
    return {"id": link.id, "source": link.source_company.name,
            "category": categories.label(category, str(get_locale() or "ja"))
            if category is not None else link.category,
            "purpose": link.purpose, "granted_at": link.granted_at,
            "expires_at": link.expires_at, "withdrawn_at": link.withdrawn_at,
            "status": links.status(link, now),
            # Ended by the consortium, not by the resident: the page says so.
            "contract_ended": link.end_reason in links.CONTRACT_REASONS}


def _render_consents(status: int = 200):
    current, withdrawn = _consents(g.resident.id)
    return render_template("account/consents.html", current=current,
                           withdrawn=withdrawn), status


def _confirmed() -> bool:
    """The resident pressed the confirmation page's button (``confirm=yes``): ending
    access is never one click away. Without it the view only shows that page."""
    return request.form.get("confirm") == "yes"


def _ask_first(kind: str, fields: dict[str, str], **about):
    """The confirmation page for ``kind`` (``withdraw``, ``item``, ``link``): what stops,
    what stays, and a form that posts the same fields again with ``confirm=yes``."""
    return render_template("account/confirm.html", kind=kind, fields=fields,
                           action=request.path, **about)


def _consent_in_force(client_id: str) -> Consent | None:
    consent = consent_service.find(g.resident.id, client_id) \
        if 0 < len(client_id) <= 40 and client_id.isascii() and client_id.isprintable() \
        else None
    return consent if consent is not None and consent.withdrawn_at is None else None


@bp.route("/account/consents", methods=["GET", "POST"])
@resident_required
def consents():
    """Each service the resident consented to, with a withdraw form per service.

    Contract: the withdraw form posts the client's id in an input named ``client_id``;
    each data link (registered data from one source company) has its own form posting
    ``link_id``, which ends that link alone. Either first shows a confirmation page;
    only its form (``confirm=yes``) changes anything.
    """
    if request.method == "GET":
        return _render_consents()
    if "link_id" in request.form:
        return _withdraw_link(request.form.get("link_id", ""))
    client_id = request.form.get("client_id", "")[:64]
    if not _confirmed():
        consent = _consent_in_force(client_id)
        if consent is None:
            flash(_("There is no consent to withdraw for this service. Nothing was changed."),
                  "error")
            return _render_consents(400)
        return _ask_first("withdraw", {"client_id": client_id}, service=consent.client.name,
                          company=consent.client.company.name,
                          items=[str(i.label) for i in items_for(consent.scopes)])
    try:
        consent = consent_service.withdraw(g.resident.id, client_id)
    except consent_service.ConsentError:
        db.session.rollback()
        flash(_("There is no consent to withdraw for this service. Nothing was changed."),
              "error")
        return _render_consents(400)
    links.end_all(g.resident.id, client_id, "consent_withdrawn")
    name = consent.client.name
    flash(_("Your consent for %(service)s has been withdrawn. The service can no longer "
            "receive your information, and will ask for your consent again if you use it.",
            service=name), "success")
    return redirect(url_for("account.consents"), 303)


@bp.post("/account/consents/item")
@resident_required
def consent_item():
    """Stop sharing one item (e.g. the birth year) with one service, keeping the rest;
    after a confirmation page (``confirm=yes``). Posts ``client_id`` and ``item``."""
    client_id = request.form.get("client_id", "")[:64]
    item = request.form.get("item", "")[:64]
    consent = _consent_in_force(client_id)
    labels = {i.scope: str(i.label) for i in items_for(consent.scopes)} if consent else {}
    if not _confirmed():
        if item not in labels or item in REQUIRED_SCOPES:
            flash(_("This item is not shared with this service. Nothing was changed."),
                  "error")
            return _render_consents(400)
        return _ask_first("item", {"client_id": client_id, "item": item},
                          service=consent.client.name, company=consent.client.company.name,
                          item=labels[item],
                          items=[label for scope, label in labels.items() if scope != item])
    try:
        consent = consent_service.withdraw_item(g.resident.id, client_id, item)
    except consent_service.ConsentError:
        db.session.rollback()
        flash(_("This item cannot be stopped on its own. Nothing was changed. To stop "
                "everything, withdraw the consent."), "error")
        return _render_consents(400)
    flash(_("%(service)s no longer receives your %(item)s. Everything else stays as it was.",
            service=consent.client.name, item=labels[item]), "success")
    return redirect(url_for("account.consents"), 303)


def _withdraw_link(raw: str):
    """End one data link (its own form on the page); the recipient is told."""
    link_id = int(raw) if raw.isdigit() and len(raw) < 12 else None
    if not _confirmed():
        link = next((each for each in links.for_resident(g.resident.id)
                     if each.id == link_id and links.status(each, utcnow()) == "in_force"),
                    None)
        if link is None:
            flash(_("There is no data link in force to withdraw. Nothing was changed."),
                  "error")
            return _render_consents(400)
        shown = _link(link, utcnow())
        return _ask_first("link", {"link_id": str(link.id)},
                          service=db.session.get(Client, link.client_id).name,
                          company=shown["source"], item=shown["category"])
    try:
        ended = links.withdraw(g.resident.id, link_id)
    except links.LinkError:
        db.session.rollback()
        flash(_("There is no data link in force to withdraw. Nothing was changed."), "error")
        return _render_consents(400)
    link = ended.link
    flash(_("%(service)s no longer receives %(category)s from %(company)s.",
            service=db.session.get(Client, link.client_id).name,
            category=_link(link, utcnow())["category"], company=link.source_company.name),
          "success")
    return redirect(url_for("account.consents"), 303)


@bp.get("/account/consents/receipts/<receipt_id>.json")
@resident_required
def receipt(receipt_id: str):
    """One consent receipt (Kantara Consent Receipt v1.1), as a JSON download."""
    row = receipts.find(g.resident.id, receipt_id)
    if row is None:
        abort(404)
    return _json_download(row.document, f"consent-receipt-{row.id}.json")


@bp.get("/account/history")
@resident_required
def history():
    """The usage record: releases, sign-ins, consents, touch events. Newest first."""
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and len(page) < 7 else 1
    result = history_service.history(g.resident.id, page,
                                     request.args.get("company") or None)
    return render_template("account/history.html", result=result)


@bp.get("/account/export")
@resident_required
def export():
    """Everything held about the resident, as a JSON download (data portability)."""
    resident = g.resident
    data = export_data(resident)
    record(AuditTag.DATA_EXPORT, resident_id=resident.id)
    return _json_download(data, f"machi-id-{resident.id}-{utcnow():%Y%m%d}.json")


def _json_download(data: dict, filename: str) -> Response:
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
    response = Response(body + "\n", mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
