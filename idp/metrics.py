"""Prometheus metrics (docs/metrics.md): the counters, and where they are counted.

The names, types and labels are the contract with the alert rules and the
dashboard in ``deploy/``; docs/metrics.md lists them. Labels stay bounded: a
Flask endpoint name, never a path; a company only when ``metrics_companies``
lists it; never a client id, a resident or a request value.

Most counters follow an audit event: ``count_events`` is called by the audit
trail with the events a transaction commits (``idp.audit.service``), and
``at_commit`` keeps the increments with the session until that commit, so a
change that rolls back is never counted. Under granian's worker processes,
``PROMETHEUS_MULTIPROC_DIR`` makes every process write its values to files
that ``/metrics`` sums (``registry``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from flask import has_app_context
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import disable_created_metrics
from prometheus_client import multiprocess
from prometheus_client.registry import REGISTRY
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from idp import config

# No ``*_created`` series: they double the output and nothing here uses them.
disable_created_metrics()

PREFIX = "machi_id_"
OTHER = "other"
PENDING = "idp.metrics.pending"

HTTP_REQUESTS = Counter(PREFIX + "http_requests_total", "Answered requests.",
                        ["endpoint", "method", "status"])
HTTP_DURATION = Histogram(
    PREFIX + "http_request_duration_seconds", "Time from the request reaching the app to its "
    "answer.", ["endpoint", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
TOKENS_ISSUED = Counter(PREFIX + "tokens_issued_total", "Token responses issued.",
                        ["grant_type", "company"])
SIGN_INS = Counter(PREFIX + "sign_ins_total", "Sign-in attempts.", ["realm", "result"])
RATE_LIMIT_REFUSALS = Counter(PREFIX + "rate_limit_refusals_total",
                              "429 answers, by the endpoint whose limit refused.", ["endpoint"])
CONSENTS = Counter(PREFIX + "consents_total", "Consent decisions.", ["action"])
CLIENT_AUTH_FAILURES = Counter(PREFIX + "client_auth_failures_total",
                               "Failed client authentications.")
TOKEN_REPLAYS = Counter(PREFIX + "token_replays_total",
                        "Authorization codes replayed and refresh tokens reused.", ["kind"])
OUTBOX_MESSAGES = Counter(PREFIX + "outbox_messages_total",
                          "Outbox messages queued, delivered, failed and given up.",
                          ["kind", "result"])
DB_POOL_CHECKED_OUT = Gauge(PREFIX + "db_pool_checked_out", "Database connections in use.",
                            multiprocess_mode="livesum")
DB_POOL_OVERFLOW = Gauge(PREFIX + "db_pool_overflow",
                         "Connections opened beyond the pool size (negative: pool not full).",
                         multiprocess_mode="livesum")
EXCHANGE_RECORDS = Counter(PREFIX + "exchange_records_total", "Data-exchange records.",
                           ["category", "action", "company"])
EXCHANGE_REFUSALS = Counter(PREFIX + "exchange_refusals_total",
                            "Contribution batches refused.")
DIRECT_ANSWERS = Counter(PREFIX + "direct_answers_total",
                         "Protocol requests answered beneath Flask (idp.oauth.direct).",
                         ["endpoint"])
AUDIT_EVENTS = Counter(PREFIX + "audit_events_total", "Committed audit events by tag.", ["tag"])
READY = Gauge(PREFIX + "ready", "Result of each /readyz check the last time it ran here.",
              ["check"], multiprocess_mode="mostrecent")

GRANT_TYPES = {
    "authorization_code": "authorization_code",
    "refresh_token": "refresh_token",
    "client_credentials": "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code": "device_code",
}
OUTBOX_TAGS = {
    "oauth:backchannel_logout:delivery": "backchannel_logout",
    "security_event:delivery": "security_event",
    "mail:delivery": "mail",
}
EXCHANGE_TAGS = {
    "exchange:record:contribute": "contributed",
    "exchange:record:withdraw": "withdrawn",
    "exchange:record:expire": "expired",
}


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def registry() -> CollectorRegistry:
    """What this process reports: every worker's values in multiprocess mode, else its own."""
    if multiprocess_dir() is None:
        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return merged


# ---- counting at commit --------------------------------------------------------------------

Increment = tuple[Any, dict[str, str]]


def at_commit(session: Session, metric: Any, amount: float = 1, **labels: str) -> None:
    """Count ``metric`` once the session's transaction commits; never if it rolls back."""
    session.info.setdefault(PENDING, []).append((metric, labels, amount))


def count_events(session: Session | None, events: Iterable[Any]) -> None:
    """The audit trail's events of a transaction about to commit (``AuditEvent`` rows);
    with no session, events already committed (a statement that committed by itself)."""
    companies = _allowed_companies()
    for event in events:
        data = event.data or {}
        for metric, labels in increments(event.tag, data, event.company_id, companies):
            amount = _amount(event.tag, data) if metric is EXCHANGE_RECORDS else 1
            if session is None:
                (metric.labels(**labels) if labels else metric).inc(amount)
            else:
                at_commit(session, metric, amount, **labels)


def increments(tag: str, data: dict[str, Any], company_id: str | None,
               companies: frozenset[str] = frozenset()) -> list[Increment]:
    """The counters an audit event moves: its tag, mapped to the metrics of docs/metrics.md."""
    company = company_id if company_id in companies else OTHER
    found: list[Increment] = [(AUDIT_EVENTS, {"tag": tag})]
    if tag in ("oauth:token:issue", "oauth:token:refresh"):
        grant = GRANT_TYPES.get(str(data.get("grant_type")), OTHER)
        found.append((TOKENS_ISSUED, {"grant_type": grant, "company": company}))
    elif tag in ("resident:login:success", "admin:login:success"):
        found.append((SIGN_INS, {"realm": tag.split(":")[0], "result": "succeeded"}))
    elif tag in ("resident:login:failure", "admin:login:failure"):
        found.append((SIGN_INS, {"realm": tag.split(":")[0], "result": "failed"}))
    elif tag == "resident:login:otp_failure":
        found.append((SIGN_INS, {"realm": "resident", "result": "second_factor_failed"}))
    elif tag == "consent:grant":
        found.append((CONSENTS, {"action": "granted"}))
    elif tag == "consent:change":
        found.append((CONSENTS, {"action": "withdrawn" if data.get("withdrawn") is True
                                 else "changed"}))
    elif tag == "consent:deny":
        found.append((CONSENTS, {"action": "denied"}))
    elif tag == "client:authentication:failure":
        found.append((CLIENT_AUTH_FAILURES, {}))
    elif tag == "oauth:code:replay":
        found.append((TOKEN_REPLAYS, {"kind": "authorization_code"}))
    elif tag == "oauth:refresh:reuse":
        found.append((TOKEN_REPLAYS, {"kind": "refresh_token"}))
    elif tag in OUTBOX_TAGS:
        result = ("delivered" if data.get("result") == "delivered"
                  else "dead" if data.get("dead") else "failed")
        found.append((OUTBOX_MESSAGES, {"kind": OUTBOX_TAGS[tag], "result": result}))
    elif tag in EXCHANGE_TAGS:
        found.append((EXCHANGE_RECORDS, {"category": _category(data.get("category")),
                                         "action": EXCHANGE_TAGS[tag], "company": company}))
    elif tag == "exchange:record:release":
        for category in data.get("categories") or []:
            found.append((EXCHANGE_RECORDS, {"category": _category(category),
                                             "action": "released", "company": company}))
    elif tag == "exchange:record:refused":
        found.append((EXCHANGE_REFUSALS, {}))
    return found


def _amount(tag: str, data: dict[str, Any]) -> float:
    # A purge records one event per company and category with how many expired.
    count = data.get("count") if tag == "exchange:record:expire" else None
    return count if isinstance(count, int) and count >= 0 else 1


def _category(value: Any) -> str:
    # Category keys are an admin-managed list (idp.exchange.categories); anything
    # else (not a short key) is folded into one value.
    if isinstance(value, str) and 0 < len(value) <= 40 and value.isascii():
        return value
    return OTHER


def _allowed_companies() -> frozenset[str]:
    if not has_app_context():
        return frozenset()
    value = config.settings().metrics_companies
    return frozenset(item.strip() for item in value.split(",") if item.strip())


def _flush(session: Session) -> None:
    for metric, labels, amount in session.info.pop(PENDING, ()):
        (metric.labels(**labels) if labels else metric).inc(amount)


def _forget(session: Session, transaction: Any) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(PENDING, None)


def init_session_events() -> None:
    """Count at commit, forget at the end of a transaction that did not commit (process-wide)."""
    for name, listener in (("after_commit", _flush), ("after_transaction_end", _forget)):
        if not sa_event.contains(Session, name, listener):
            sa_event.listen(Session, name, listener)


# ---- the database pool ---------------------------------------------------------------------

def watch_pool(engine: Any) -> None:
    """Keep the pool gauges current as connections are checked out and in."""
    pool = engine.pool

    def update(*_args: Any) -> None:
        checked_out = getattr(pool, "checkedout", None)
        overflow = getattr(pool, "overflow", None)
        if checked_out is not None:
            DB_POOL_CHECKED_OUT.set(checked_out())
        if overflow is not None:
            DB_POOL_OVERFLOW.set(overflow())

    for name in ("checkout", "checkin"):
        if not sa_event.contains(pool, name, update):
            sa_event.listen(pool, name, update)


# ---- requests ------------------------------------------------------------------------------

def count_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    labels = {"endpoint": endpoint or "none", "method": _method(method), "status": str(status)}
    HTTP_REQUESTS.labels(**labels).inc()
    HTTP_DURATION.labels(**labels).observe(seconds)
    if status == 429:
        RATE_LIMIT_REFUSALS.labels(endpoint=labels["endpoint"]).inc()


def _method(method: str) -> str:
    return method if method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                "OPTIONS") else OTHER
