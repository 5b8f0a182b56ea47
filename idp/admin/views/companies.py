"""Companies: admission, name, data-use contract, suspension, reinstatement, revocation."""

from __future__ import annotations

import datetime as dt

from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _

from idp.admin import stats
from idp.admin.views import action
from idp.admin.views import admin_required
from idp.admin.views import bp
from idp.admin.views import done
from idp.admin.views import refused
from idp.clients import service as clients
from idp.kiosk import service as kiosk_service


def parse_date(value: str | None) -> dt.date:
    try:
        return dt.date.fromisoformat((value or "").strip())
    except ValueError:
        raise clients.ClientError(_("a date must look like 2026-04-01")) from None


@bp.get("/companies")
@admin_required
def companies():
    """Every member company with its status, contract and clients."""
    return render_template("admin/companies.html", companies=clients.list_companies(),
                           counts=clients.counts_by_company())


@bp.post("/companies")
@admin_required
@action()
def company_create():
    """Admit a member company."""
    back = url_for("admin.companies")
    try:
        company = clients.create_company(request.form.get("name", ""), actor="admin")
    except clients.ClientError as error:
        return refused("company:create", error, back)
    return done(_("Company %(name)s was admitted.", name=company.name),
                url_for("admin.company", company_id=company.id))


@bp.get("/companies/<company_id>")
@admin_required
def company(company_id: str):
    """One company: its contract history, clients and kiosks, and the actions."""
    row = clients.find_company(company_id)
    if row is None:
        return render_template("admin/not_found.html", what=company_id), 404
    kiosk_ids = {k.client_id for k in kiosk_service.kiosks()}
    return render_template("admin/company.html", company=row, clients=row.clients,
                           kiosk_ids=kiosk_ids, today=stats.today().isoformat())


@bp.post("/companies/<company_id>/edit")
@admin_required
@action()
def company_edit(company_id: str):
    back = url_for("admin.company", company_id=company_id)
    try:
        clients.update_company(company_id, request.form.get("name", ""), actor="admin")
    except clients.ClientError as error:
        return refused("company:update", error, back, company_id=company_id[:16])
    return done(_("The company was saved."), back)


@bp.post("/companies/<company_id>/contract")
@admin_required
@action()
def company_contract(company_id: str):
    """Record the data-use contract the company signed."""
    back = url_for("admin.company", company_id=company_id)
    try:
        clients.record_contract(company_id, request.form.get("reference", ""),
                                request.form.get("version", ""),
                                parse_date(request.form.get("signed_on")), actor="admin")
    except clients.ClientError as error:
        return refused("company:contract", error, back, company_id=company_id[:16])
    return done(_("The contract was recorded."), back)


@bp.post("/companies/<company_id>/suspend")
@admin_required
@action(fresh=True)
def company_suspend(company_id: str):
    """Cut the company off now (reversible)."""
    back = url_for("admin.company", company_id=company_id)
    try:
        company = clients.suspend_company(company_id, actor="admin")
    except clients.ClientError as error:
        return refused("company:suspend", error, back, company_id=company_id[:16])
    return done(_("%(name)s is suspended: its services are cut off.", name=company.name), back)


@bp.post("/companies/<company_id>/reinstate")
@admin_required
@action(fresh=True)
def company_reinstate(company_id: str):
    back = url_for("admin.company", company_id=company_id)
    try:
        company = clients.reinstate_company(company_id, actor="admin")
    except clients.ClientError as error:
        return refused("company:reinstate", error, back, company_id=company_id[:16])
    return done(_("%(name)s is reinstated. Its services must sign residents in again.",
                  name=company.name), back)


@bp.post("/companies/<company_id>/revoke")
@admin_required
@action(fresh=True)
def company_revoke(company_id: str):
    """Exclude the company for good; the admin types the company id to confirm."""
    back = url_for("admin.company", company_id=company_id)
    try:
        if request.form.get("confirm", "").strip() != company_id:
            raise clients.ClientError(_("type the company id to confirm"))
        company = clients.revoke_company(company_id, actor="admin")
    except clients.ClientError as error:
        return refused("company:revoke", error, back, company_id=company_id[:16])
    return done(_("%(name)s is revoked for good.", name=company.name), back)
