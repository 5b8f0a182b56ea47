"""``/metrics``, ``/healthz`` and ``/readyz``: for the scraper, the orchestrator and nginx.

None of them sets a cookie, writes to the database, records an audit event or
counts towards a rate limit; none needs a CSRF token (they are GETs, and
exempt anyway). ``/healthz`` answers from the process alone; ``/readyz`` runs
the checks of ``idp.observability.readiness``; ``/metrics`` answers only to
the addresses of ``metrics_allow`` or the bearer ``metrics_token``, 404 to
anyone else (docs/metrics.md, docs/deployment.md).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from flask import Blueprint
from flask import Response
from flask import abort
from flask import jsonify
from flask import request
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest

from idp import config
from idp import metrics
from idp.extensions import csrf
from idp.extensions import db
from idp.extensions import limiter
from idp.observability import readiness
from idp.observability.collectors import DatabaseGauges
from idp.proxy import parse_networks

log = logging.getLogger(__name__)
bp = Blueprint("observability", __name__)


@bp.get("/healthz")
@limiter.exempt
@csrf.exempt
def healthz():
    """The process is alive and answers (no database, no Redis)."""
    return jsonify(status="alive")


@bp.get("/readyz")
@limiter.exempt
@csrf.exempt
def readyz():
    """200 when every check passes, else 503 naming the failed ones."""
    results = readiness.checks()
    if readiness.ready(results):
        return jsonify(status="ready", checks=results)
    response = jsonify(status="unready", checks=results)
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


def may_scrape() -> bool:
    settings = config.settings()
    if settings.metrics_token:
        scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
                given.strip().encode(), settings.metrics_token.encode()):
            return True
    try:
        address = ipaddress.ip_address((request.remote_addr or "").split("%", 1)[0])
    except ValueError:
        return False
    return any(address in network for network in parse_networks(settings.metrics_allow))


@bp.get("/metrics", endpoint="metrics")
@limiter.exempt
@csrf.exempt
def scrape():
    """Prometheus text format: every worker's counters and the database gauges."""
    if not may_scrape():
        abort(404)
    body = generate_latest(metrics.registry())
    gauges = CollectorRegistry()
    gauges.register(DatabaseGauges())
    try:
        body += generate_latest(gauges)
    except Exception as exc:  # noqa: BLE001 - the counters still answer without the database
        db.session.rollback()
        log.warning("metrics: the database gauges are left out (%s)", type(exc).__name__)
    return Response(body, content_type=CONTENT_TYPE_LATEST)
