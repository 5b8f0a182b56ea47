"""The audit trail (filters, CSV export, chain verification), usage reports, and
identity proofing."""

from __future__ import annotations

import datetime as dt
import json

from flask import Response
from flask import g
from flask import render_template
from flask import request
from flask import stream_with_context
from flask import url_for
from flask_babel import gettext as _

from idp.access import service as access
from idp.admin import reports
from idp.admin import stats
from idp.admin.views import action
from idp.admin.views import admin_required
from idp.admin.views import bp
from idp.admin.views import done
from idp.admin.views import refusable
from idp.admin.views import refused
from idp.admin.views import safe_return
from idp.audit import chain
from idp.audit import guard
from idp.audit import query as audit_query
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients import service as clients
from idp.extensions import db
from idp.keys import audit_heads
from idp.proofing import service as proofing

# ---- audit trail -----------------------------------------------------------------------


def _filters(source) -> tuple[audit_query.Filters, str | None]:
    try:
        return audit_query.Filters.parse(source, stats.day_start), None
    except audit_query.FilterError as error:
        return audit_query.Filters(), str(error)


@bp.get("/audit")
@admin_required
def audit():
    """Events newest first, filtered by company, client, resident, admin, type and time."""
    filters, error = _filters(request.args)
    before = request.args.get("before", type=int)
    events, next_before = audit_query.page(filters, before) if error is None else ([], None)
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    companies = clients.list_companies()
    # Names instead of ids where people know them; the id stays in the cell's title.
    client_ids = {e.client_id for e in events if e.client_id}
    names = {c.id: c.name for c in companies}
    names.update({c.id: c.name for c in clients.list_clients() if c.id in client_ids})
    return render_template("admin/audit.html", events=events, next_before=next_before,
                           args=args, error=error, tags=audit_query.known_tags(),
                           companies=companies, names=names), 400 if error else 200


@bp.post("/audit/export")
@action(once=False)
def audit_export():
    """The filtered events as CSV (every column, digests included); audited."""
    filters, error = _filters(request.form)
    if error is not None:
        return refused("audit:export", ValueError(error), url_for("admin.audit"))
    # Committed by the request's unit of work before the first line is streamed.
    record(AuditTag.AUDIT_EXPORT, format="csv", filters=filters.as_dict())
    stamp = stats.today().isoformat()
    return Response(stream_with_context(audit_query.csv_lines(filters)),
                    mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="machi-id-audit-{stamp}.csv"'})


@bp.post("/audit/verify")
@action(once=False)
def audit_verify():
    """Recompute the hash chain now; the result is shown and audited."""
    anchors, error = [], None
    for line in request.form.get("anchors", "").split():
        try:
            anchors.append(chain.parse_anchor(line))
        except ValueError as exc:
            error = str(exc)
    if error is not None:
        return refused("audit:verify", ValueError(error), url_for("admin.audit"))
    result = chain.verify(db.session, anchors, check=audit_heads.check)
    result.guard_installed = guard.installed(db.session.connection())
    record(AuditTag.AUDIT_VERIFY, ok=result.ok, events=result.events, head_seq=result.head_seq,
           head_digest=result.head_digest, heads=result.heads, unsealed=result.unsealed,
           first_break=result.first_break.as_dict() if result.first_break else None,
           guard_installed=result.guard_installed)
    return render_template("admin/audit_verify.html", result=result)


# ---- usage reports -----------------------------------------------------------------------

def _report_args(source) -> tuple[str, dt.date, dt.date]:
    today = stats.today()
    first_of_month = today.replace(day=1)
    last_month_end = first_of_month - dt.timedelta(days=1)
    try:
        first = dt.date.fromisoformat(source.get("from") or last_month_end.replace(
            day=1).isoformat())
        last = dt.date.fromisoformat(source.get("to") or last_month_end.isoformat())
    except ValueError:
        raise reports.ReportError(_("dates must look like 2026-04-01")) from None
    return source.get("company", ""), first, last


@bp.get("/reports")
@admin_required
def reports_page():
    """A company's usage for a period (by default last month), on screen."""
    companies = clients.list_companies()
    report = error = None
    try:
        company_id, first, last = _report_args(request.args)
        if company_id:
            report = reports.usage(company_id, first, last)
    except (reports.ReportError, clients.ClientError) as exc:
        error = str(exc)
        company_id, first, last = request.args.get("company", ""), None, None
    return render_template("admin/reports.html", companies=companies, report=report,
                           error=error, company_id=company_id,
                           first=first.isoformat() if first else "",
                           last=last.isoformat() if last else ""), 400 if error else 200


@bp.post("/reports/download")
@action(once=False)
def report_download():
    """The report as CSV or JSON, for the company's contract file; audited."""
    fmt = request.form.get("format") if request.form.get("format") in ("csv", "json") \
        else "csv"
    try:
        company_id, first, last = _report_args(request.form)
        report = reports.usage(company_id, first, last)
    except (reports.ReportError, clients.ClientError) as error:
        return refused("report:usage", error, url_for("admin.reports_page"))
    record(AuditTag.REPORT_USAGE, company_id=report["company"]["id"], format=fmt,
           period=report["period"])
    name = f"machi-id-usage-{report['company']['id']}-{first.isoformat()}-{last.isoformat()}"
    if fmt == "json":
        body, mimetype = json.dumps(report, ensure_ascii=False, indent=2), "application/json"
    else:
        body, mimetype = reports.to_csv(report), "text/csv; charset=utf-8"
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


# ---- identity proofing ----------------------------------------------------------------------

@bp.get("/proofing")
@admin_required
def proofing_search():
    """Find the resident at the counter by consortium ID or email address."""
    q = request.args.get("q", "").strip()
    resident = proofing.find_resident(q) if q else None
    if resident is not None:
        return _proofing_page(resident)
    return render_template("admin/proofing_search.html", q=q,
                           not_found=bool(q)), 404 if q else 200


def _proofing_page(resident, error: str | None = None, status: int = 200):
    return render_template(
        "admin/proofing.html", resident=resident, records=proofing.proofings(resident.id),
        values=proofing.claim_values(resident), claims=proofing.CLAIMS,
        claim_labels=proofing.CLAIM_LABELS, evidence=proofing.EVIDENCE_LABELS,
        still=lambda row: proofing.still_verified(resident, row),
        today=stats.today().isoformat(), error=error), status


def _resident_page(resident_id: str) -> str:
    return url_for("admin.proofing_search", q=resident_id)


@bp.post("/proofing/<resident_id>")
@action()
@refusable("proofing:record", proofing.ProofingError, back=_resident_page)
def proofing_record(resident_id: str):
    """Record a counter check: claims matched, document, date (the admin is you)."""
    resident = proofing.find_resident(resident_id)
    if resident is None:
        raise proofing.ProofingError(_("no such resident"))
    try:
        day = dt.date.fromisoformat(request.form.get("verified_on", ""))
    except ValueError:
        raise proofing.ProofingError(_("dates must look like 2026-04-01")) from None
    proofing.record_proofing(resident.id, request.form.getlist("claim"),
                             request.form.get("evidence", ""), day, g.admin.id, actor="admin")
    return done(_("The identity check was recorded."), _resident_page(resident_id))


@bp.post("/proofing/record/<int:proofing_id>/withdraw")
@action(fresh=True)
@refusable("proofing:withdraw", proofing.ProofingError, back=lambda proofing_id: safe_back())
def proofing_withdraw(proofing_id: int):
    proofing.withdraw_proofing(proofing_id, request.form.get("reason", ""), g.admin.id,
                               actor="admin")
    return done(_("The identity check was withdrawn."), safe_back())


@bp.post("/proofing/<resident_id>/sign-out")
@action(fresh=True)
@refusable("resident:sign_out", proofing.ProofingError, back=_resident_page)
def resident_sign_out(resident_id: str):
    """End every browser session and grant of the resident (a lost phone, a shared
    computer); services with a back-channel logout URI are told."""
    resident = proofing.find_resident(resident_id)
    if resident is None:
        raise proofing.ProofingError(_("no such resident"))
    access.sign_out_everywhere(resident, "admin")
    return done(_("The resident is signed out everywhere."), _resident_page(resident_id))


def safe_back() -> str:
    return safe_return(request.form.get("return_to"), url_for("admin.proofing_search"))
