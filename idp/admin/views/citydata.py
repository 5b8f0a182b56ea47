"""The city's data on the console: the downtown database export and the published
operation statistics (docs/city-export.md), each shown or downloaded as CSV or JSON."""

from __future__ import annotations

import datetime as dt
import json

from flask import Response
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _

from idp import config
from idp.admin import stats
from idp.admin.views import action
from idp.admin.views import admin_required
from idp.admin.views import bp
from idp.admin.views import refused
from idp.citydata import buckets
from idp.citydata import export
from idp.citydata import operations


def _last_month() -> str:
    return (stats.today().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")


def _format(source) -> str:
    return source.get("format") if source.get("format") in ("csv", "json") else "csv"


def _k(source) -> int | None:
    value = (source.get("k") or "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ValueError(_("k must be a whole number"))
    return int(value)


def _download(body_json: dict, csv_text: str, fmt: str, name: str) -> Response:
    if fmt == "json":
        body, mimetype = json.dumps(body_json, ensure_ascii=False, indent=2), "application/json"
    else:
        body, mimetype = csv_text, "text/csv; charset=utf-8"
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


@bp.get("/city-data")
@admin_required
def citydata_page():
    """The export's parameters and forms; a month's operation statistics on screen."""
    month = request.args.get("month") or _last_month()
    summary = error = None
    try:
        summary = operations.summary(month, via="console", audited=False)
    except operations.OperationsError as exc:
        error = str(exc)
    yesterday = stats.today() - dt.timedelta(days=1)
    settings = config.settings()
    return render_template(
        "admin/citydata.html", month=month, summary=summary, error=error,
        granularities=buckets.GRANULARITIES, k=settings.city_export_k,
        l_diversity=settings.city_export_l, first=yesterday.isoformat(),
        last=yesterday.isoformat()), 400 if error else 200


@bp.post("/city-data/export")
@action(once=False)
def citydata_export():
    """The downtown database export for a window, as CSV or JSON; audited."""
    fmt = _format(request.form)
    try:
        start = dt.date.fromisoformat(request.form.get("from", ""))
        end = dt.date.fromisoformat(request.form.get("to", ""))
    except ValueError:
        return refused("city:export", ValueError(_("dates must look like 2026-04-01")),
                       url_for("admin.citydata_page"))
    try:
        data = export.city_stats(start, end, _k(request.form),
                                 granularity=request.form.get("granularity", "hour"),
                                 via="console")
    except ValueError as error:
        return refused("city:export", error, url_for("admin.citydata_page"))
    name = f"machi-id-city-{data['granularity']}-{data['from']}-{data['to']}"
    return _download(data, export.to_csv(data), fmt, name)


@bp.post("/city-data/operations")
@action(once=False)
def citydata_operations():
    """A month's operation statistics, for publication, as CSV or JSON; audited."""
    fmt = _format(request.form)
    try:
        report = operations.summary(request.form.get("month", ""), _k(request.form),
                                    via="console")
    except ValueError as error:
        return refused("report:operations", error, url_for("admin.citydata_page"))
    return _download(report, operations.to_csv(report), fmt,
                     f"machi-id-operations-{report['month']}")
