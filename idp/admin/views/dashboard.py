"""The dashboard: residents, companies, consents, tokens, failed sign-ins, kiosk touches."""

from __future__ import annotations

import datetime as dt

from flask import render_template
from flask import request
from flask_babel import gettext as _

from idp.admin import charts
from idp.admin import stats
from idp.admin.views import admin_required
from idp.admin.views import bp
from idp.clients import service as clients

PERIODS = (7, 30, 90)


@bp.get("/")
@admin_required
def dashboard():
    """Charts over the last 7, 30 or 90 days (Japan time); touches for one day."""
    period = request.args.get("days", type=int)
    period = period if period in PERIODS else 30
    last = stats.today()
    first = last - dt.timedelta(days=period - 1)
    labels = [d.strftime("%m-%d") for d in stats.days(first, last)]
    try:
        touch_day = dt.date.fromisoformat(request.args.get("day", ""))
    except ValueError:
        touch_day = last
    names = {c.id: c.name for c in clients.list_companies()}
    residents = stats.residents_per_day(first, last)
    consents = stats.active_consents_per_company(first, last)
    tokens = stats.events_per_day(stats.TOKEN_TAGS, first, last)
    resident_failures = stats.events_per_day(stats.RESIDENT_LOGIN_FAILURES, first, last)
    admin_failures = stats.events_per_day(stats.ADMIN_LOGIN_FAILURES, first, last)
    touches = stats.touches_per_kiosk_hour(touch_day)
    data_caption = _("The numbers")
    chart_list = [
        charts.lines(_("Residents"), _("Registered consortium IDs at the end of each day."),
                     labels, [(_("Residents"), residents)], data_caption),
        charts.lines(_("Active consents per company"),
                     _("Consents in force at the end of each day, one line per company."),
                     labels, [(names.get(cid, cid), values)
                              for cid, values in sorted(consents.items(),
                                                        key=lambda kv: names.get(kv[0], ""))]
                     or [(_("No consents"), [0] * len(labels))], data_caption),
        charts.bars(_("Tokens issued per day"),
                    _("Access tokens issued, refreshes included."),
                    labels, [(_("Tokens"), tokens)], data_caption),
        charts.bars(_("Failed sign-ins per day"),
                    _("Failed sign-ins of residents (password or second step) and of admins."),
                    labels, [(_("Residents"), resident_failures), (_("Admins"), admin_failures)],
                    data_caption),
        charts.heatmap(_("Touch events per kiosk and hour"),
                       _("Touches logged by each kiosk on %(day)s, per hour (Japan time).",
                         day=touch_day.isoformat()),
                       [(kiosk.client.name, counts) for kiosk, counts in touches],
                       data_caption, _("Kiosk")),
    ]
    by_status = stats.companies_by_status()
    return render_template(
        "admin/dashboard.html", charts=chart_list, period=period, periods=PERIODS,
        touch_day=touch_day.isoformat(), residents_total=residents[-1] if residents else 0,
        companies=by_status, consents_total=sum(v[-1] for v in consents.values()),
        tokens_total=sum(tokens), failures_total=sum(resident_failures) + sum(admin_failures))
