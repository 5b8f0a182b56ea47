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
from idp.admin.views import confirmed
from idp.admin.views import done
from idp.admin.views import found
from idp.admin.views import refusable
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


def _page(company_id: str, **_view_args) -> str:
    return url_for("admin.company", company_id=company_id)


def _ids(company_id: str, **_view_args) -> dict[str, str]:
    return {"company_id": company_id[:16]}


@bp.post("/companies")
@action()
@refusable("company:create", clients.ClientError, back=lambda: url_for("admin.companies"))
def company_create():
    """Admit a member company."""
    company = clients.create_company(request.form.get("name", ""), actor="admin")
    return done(_("Company %(name)s was admitted.", name=company.name), _page(company.id))


@bp.get("/companies/<company_id>")
@admin_required
def company(company_id: str):
    """One company: its contract history, clients and kiosks, and the actions."""
    row = found(clients.find_company(company_id), company_id)
    kiosk_ids = {k.client_id for k in kiosk_service.kiosks()}
    return render_template("admin/company.html", company=row, clients=row.clients,
                           kiosk_ids=kiosk_ids, today=stats.today().isoformat())


@bp.post("/companies/<company_id>/edit")
@action()
@refusable("company:update", clients.ClientError, back=_page, ids=_ids)
def company_edit(company_id: str):
    clients.update_company(company_id, request.form.get("name", ""), actor="admin")
    return done(_("The company was saved."), _page(company_id))


@bp.post("/companies/<company_id>/contract")
@action()
@refusable("company:contract", clients.ClientError, back=_page, ids=_ids)
def company_contract(company_id: str):
    """Record the data-use contract the company signed."""
    clients.record_contract(company_id, request.form.get("reference", ""),
                            request.form.get("version", ""),
                            parse_date(request.form.get("signed_on")), actor="admin")
    return done(_("The contract was recorded."), _page(company_id))


# Suspension and reinstatement mirror each other: one view, the address says which.
STANDING = {
    "suspend": (clients.suspend_company,
                lambda name: _("%(name)s is suspended: its services are cut off.", name=name)),
    "reinstate": (clients.reinstate_company,
                  lambda name: _("%(name)s is reinstated. Its services must sign residents in "
                                 "again.", name=name)),
}


@bp.post("/companies/<company_id>/suspend", endpoint="company_suspend",
         defaults={"change": "suspend"})
@bp.post("/companies/<company_id>/reinstate", endpoint="company_reinstate",
         defaults={"change": "reinstate"})
@action(fresh=True)
@refusable("company:{change}", clients.ClientError, back=_page, ids=_ids)
def company_standing(company_id: str, change: str):
    """Cut the company off now (reversible), or lift that. A suspension first shows a
    confirmation page naming the services cut off; only its form (``confirm=yes``, a new
    one-time form token) suspends."""
    company = clients.find_company(company_id)
    if change == "suspend" and request.form.get("confirm") != "yes" \
            and company is not None and company.status == "active":
        return render_template("admin/confirm.html", company=company,
                               services=[c for c in company.clients if c.revoked_at is None],
                               action=url_for("admin.company_suspend", company_id=company.id))
    change_standing, message = STANDING[change]
    company = change_standing(company_id, actor="admin")
    return done(message(company.name), _page(company_id))


@bp.post("/companies/<company_id>/revoke")
@action(fresh=True)
@refusable("company:revoke", clients.ClientError, back=_page, ids=_ids)
def company_revoke(company_id: str):
    """Exclude the company for good; the admin types the company id to confirm."""
    if not confirmed(company_id):
        raise clients.ClientError(_("type the company id to confirm"))
    company = clients.revoke_company(company_id, actor="admin")
    return done(_("%(name)s is revoked for good.", name=company.name), _page(company_id))
