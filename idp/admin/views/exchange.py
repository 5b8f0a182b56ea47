"""The data exchange on the console: categories of registered data, data-use contracts
per company with the usage reports companies submit under them, and the monitoring's
alerts with their evidence."""

from __future__ import annotations

import json
from urllib.parse import quote

from flask import g
from flask import make_response
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _

from idp.admin.views import action
from idp.admin.views import admin_required
from idp.admin.views import bp
from idp.admin.views import confirmed
from idp.admin.views import done
from idp.admin.views import found
from idp.admin.views import refusable
from idp.admin.views.companies import parse_date
from idp.clients import service as clients
from idp.exchange import categories as category_service
from idp.exchange import contracts as contract_service
from idp.exchange import lifecycle
from idp.exchange import monitoring
from idp.exchange import usage
from idp.exchange.models import SENSITIVITIES


def _int(value: str | None, what: str, default: int) -> int:
    if not (value or "").strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise category_service.CategoryError(_("%(what)s must be a number", what=what)) from None


# ---- categories -----------------------------------------------------------------------

@bp.get("/categories")
@admin_required
def categories_page():
    """The categories of registered data in use."""
    return render_template("admin/categories.html", categories=category_service.in_use(),
                           sensitivities=SENSITIVITIES)


@bp.post("/categories")
@action()
@refusable("category:create", category_service.CategoryError,
           back=lambda: url_for("admin.categories_page"))
def category_create():
    """Add a category: key, labels, a JSON Schema for a value, sensitivity, retention."""
    form = request.form
    try:
        schema = json.loads(form.get("schema", ""))
    except ValueError:
        raise category_service.CategoryError(_("the schema must be JSON")) from None
    category = category_service.create(
        form.get("key", "").strip(), form.get("label_ja", ""), form.get("label_en", ""), schema,
        sensitivity=form.get("sensitivity", "normal"),
        retention_days=_int(form.get("retention_days"), _("Retention"), 365),
        statistics=form.get("statistics") == "yes", actor="admin")
    return done(_("Category %(key)s was added.", key=category.key),
                url_for("admin.categories_page"))


def _categories_page(**_view_args) -> str:
    return url_for("admin.categories_page")


@bp.post("/categories/<key>")
@action()
@refusable("category:update", category_service.CategoryError, back=_categories_page)
def category_update(key: str):
    """Change a category's labels, retention, statistics flag, and its schema while no
    value of it is held."""
    form = request.form
    try:
        schema = json.loads(form["schema"]) if form.get("schema", "").strip() else None
    except ValueError:
        raise category_service.CategoryError(_("the schema must be JSON")) from None
    retention = form.get("retention_days", "").strip()
    _category, changed = category_service.update(
        key, label_ja=form.get("label_ja"), label_en=form.get("label_en"), schema=schema,
        retention_days=_int(retention, _("Retention"), 0) if retention else None,
        statistics=form.get("statistics") == "yes", actor="admin")
    if not changed:
        return done(_("Category %(key)s: nothing changed.", key=key), _categories_page())
    return done(_("Category %(key)s was changed.", key=key), _categories_page())


@bp.post("/categories/<key>/retire")
@action(fresh=True)
@refusable("category:retire", category_service.CategoryError, back=_categories_page)
def category_retire(key: str):
    """Take a category out of use for good; the admin types its key to confirm."""
    if not confirmed(key):
        raise category_service.CategoryError(_("type the key to confirm"))
    category_service.retire(key, actor="admin")
    return done(_("Category %(key)s was retired: it can no longer be contributed or "
                  "provided.", key=key), _categories_page())


# ---- contracts and companies' usage reports ---------------------------------------------

def _contracts_page(**_view_args) -> str:
    company = request.form.get("company_id") or request.args.get("company")
    return url_for("admin.contracts_page", company=company) if company else \
        url_for("admin.contracts_page")


@bp.get("/contracts")
@admin_required
def contracts_page():
    """Data-use contracts (of one company with ?company=), with the reports it submitted."""
    company_id = request.args.get("company") or None
    company = found(clients.find_company(company_id), company_id) if company_id else None
    return render_template(
        "admin/contracts.html", company=company, companies=clients.list_companies(),
        contracts=contract_service.listing(company_id), today=contract_service.today(),
        categories=category_service.in_use(), reports=usage.uploaded(company_id))


@bp.post("/contracts")
@action()
@refusable("contract:create", contract_service.ContractError, clients.ClientError,
           category_service.CategoryError, back=_contracts_page)
def contract_create():
    """Record a data-use contract naming categories."""
    form = request.form
    contract = contract_service.create(
        form.get("company_id", ""), form.getlist("category"), form.get("purpose", ""),
        valid_until=parse_date(form.get("valid_until")),
        valid_from=parse_date(form.get("valid_from")) if form.get("valid_from") else None,
        retention_days=_int(form.get("retention_days"), _("Retention"), 365),
        liability=form.get("liability", ""), audit_rights=form.get("audit_rights", ""),
        breach_contact=form.get("breach_contact", ""), actor="admin")
    return done(_("Contract %(id)s was recorded.", id=contract.id),
                url_for("admin.contracts_page", company=contract.company_id))


@bp.post("/contracts/<contract_id>/end")
@action(fresh=True)
@refusable("contract:end", contract_service.ContractError, back=_contracts_page)
def contract_end(contract_id: str):
    """End a contract now: its categories are refused to the company from now on, and the
    data links it alone allowed end (their services are told)."""
    contract, _links = lifecycle.end_contract(contract_id, request.form.get("reason") or
                                              "ended by the consortium", actor="admin")
    return done(_("Contract %(id)s was ended.", id=contract.id),
                url_for("admin.contracts_page", company=contract.company_id))


@bp.post("/contracts/<contract_id>/usage-reports")
@action()
@refusable("usage_report:upload", usage.UploadError, clients.ClientError,
           back=_contracts_page)
def usage_report_upload(contract_id: str):
    """Keep a usage report the company submitted under this contract, as received."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise usage.UploadError(_("choose a file"))
    body = upload.read(usage.MAX_UPLOAD_BYTES + 1)
    report = usage.upload(contract_id, upload.filename, upload.mimetype or "", body,
                          period_start=parse_date(request.form.get("period_start")),
                          period_end=parse_date(request.form.get("period_end")),
                          admin_id=g.admin.id)
    return done(_("The report %(name)s was kept (SHA-256 %(digest)s).", name=report.filename,
                  digest=report.sha256[:16] + "…"),
                url_for("admin.contracts_page", company=report.company_id))


@bp.get("/usage-reports/<int:report_id>")
@admin_required
def usage_report_download(report_id: int):
    """The submitted file as received (always as a download, never rendered here)."""
    report = found(usage.get_upload(report_id), str(report_id))
    response = make_response(report.body)
    response.headers["Content-Type"] = "application/octet-stream"
    response.headers["Content-Disposition"] = \
        f"attachment; filename*=UTF-8''{quote(report.filename)}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Digest"] = f"sha-256={report.sha256}"
    return response


# ---- monitoring -------------------------------------------------------------------------

@bp.get("/monitoring")
@admin_required
def monitoring_page():
    """The monitoring's alerts, open ones first, with their evidence."""
    rows = monitoring.alerts()
    rows.sort(key=lambda a: a.acknowledged_at is not None)
    return render_template("admin/monitoring.html", alerts=rows)


@bp.post("/monitoring/<int:alert_id>/acknowledge")
@action()
@refusable("monitoring:acknowledge", monitoring.MonitoringError,
           back=lambda alert_id: url_for("admin.monitoring_page"))
def monitoring_acknowledge(alert_id: int):
    monitoring.acknowledge(alert_id, g.admin.id)
    return done(_("Alert %(id)s was acknowledged.", id=alert_id), url_for("admin.monitoring_page"))
