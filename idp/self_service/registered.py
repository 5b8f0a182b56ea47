"""``/account/data``: registered data member companies sent about the resident
(登録データ), by source company, with how and when each item was collected; delete an
item, dispute it, stop or resume collection from a company.

Like withdrawing a consent, these change only what is held about the resident and
take nothing from them, so the signed-in session is enough (no password again).
An item or company the resident cannot see is a 404 whoever it belongs to.
"""

from __future__ import annotations

from typing import Any

from flask import abort
from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _

from idp.exchange import residents
from idp.extensions import db
from idp.self_service import bp
from idp.self_service import resident_required


@bp.app_template_filter("registered_value")
def registered_value(value: Any) -> str:
    """A contributed value as people read it: lists joined, objects as key: value."""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list):
        return "、".join(registered_value(v) for v in value)
    if isinstance(value, dict):
        return " / ".join(f"{k}: {registered_value(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _render(status: int = 200, errors: dict[int, str] | None = None,
            notes: dict[int, str] | None = None):
    sources = residents.held(g.resident.id)
    return render_template("account/registered_data.html", sources=sources,
                           errors=errors or {}, notes=notes or {},
                           max_note=residents.MAX_NOTE), status


@bp.get("/account/data")
@resident_required
def registered_data():
    """Every item of registered data held about the resident, by source company."""
    return _render()


@bp.post("/account/data/items/<item_id>/delete")
@resident_required
def registered_data_delete(item_id: str):
    """Delete one item for good."""
    try:
        row = residents.delete(g.resident.id, item_id)
    except residents.ResidentDataError:
        db.session.rollback()
        abort(404)
    flash(_("The item from %(company)s was deleted. Machi ID no longer provides it to any "
            "service.", company=row.company.name), "success")
    return redirect(url_for("account.registered_data"), 303)


@bp.post("/account/data/items/<item_id>/dispute")
@resident_required
def registered_data_dispute(item_id: str):
    """Say an item is wrong, with a note for the company that sent it."""
    if residents.find(g.resident.id, item_id) is None:
        abort(404)
    note = request.form.get("note", "")
    try:
        row, _told = residents.dispute(g.resident.id, item_id, note[:4096])
    except residents.ResidentDataError:
        db.session.rollback()
        key = int(item_id)
        return _render(400, {key: _("Write what is wrong in 1 to %(max)s characters.",
                                    max=residents.MAX_NOTE)}, {key: note[:1000]})
    flash(_("We have told %(company)s that the item is wrong. Until it corrects the item, "
            "it is not provided to any service.", company=row.company.name), "success")
    return redirect(url_for("account.registered_data"), 303)


@bp.post("/account/data/companies/<company_id>/stop")
@resident_required
def registered_data_stop(company_id: str):
    """Stop collection from a company; optionally delete what it sent."""
    delete_sent = request.form.get("delete_sent") == "yes"
    try:
        _stop, deleted = residents.stop(g.resident.id, company_id[:64], delete_sent=delete_sent)
    except residents.ResidentDataError:
        db.session.rollback()
        abort(404)
    message = _("Collection from %(company)s is stopped. Data it sends about you from now on "
                "is refused.", company=_company_name(company_id))
    if delete_sent:
        message += " " + _("%(count)s items it sent were deleted.", count=deleted)
    flash(message, "success")
    return redirect(url_for("account.registered_data"), 303)


@bp.post("/account/data/companies/<company_id>/resume")
@resident_required
def registered_data_resume(company_id: str):
    """Accept a company's data about the resident again."""
    try:
        residents.resume(g.resident.id, company_id[:64])
    except residents.ResidentDataError:
        db.session.rollback()
        abort(404)
    flash(_("Collection from %(company)s has resumed.", company=_company_name(company_id)),
          "success")
    return redirect(url_for("account.registered_data"), 303)


def _company_name(company_id: str) -> str:
    return residents.company_name(company_id) or company_id
