"""Queue messages with the change that causes them; deliver them after it commits.

Kinds: back-channel logout tokens (``idp.oauth.backchannel``, a form POSTed to
the client), security event tokens (``idp.oauth.security_events``, a body of
their own media type pushed to the company's receiver, RFC 8935) and mail to
residents (``idp.mail.service``, handed to the SMTP server or written to the
development mail folder).

``enqueue`` adds a row to the caller's transaction, so a message exists if and
only if its change committed (a rolled back revocation logs nobody out).
``deliver_due`` sends what is due in three steps, and never holds a
transaction or a lock while it waits on another server:

1. claim (one short transaction): the due rows, ``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL so concurrent workers take different rows (SQLite has one
   writer at a time anyway); each gets ``attempts + 1`` and a lease
   (``next_attempt_at`` moved ``LEASE`` ahead, so a worker that dies mid-way
   only delays its rows), and is rendered (a logout token is signed here);
   commit;
2. send each message with no transaction open: a POST with a short timeout
   and no redirects (or the kind's own ``send``, e.g. SMTP). A relying party
   that calls back while it receives its logout token (``/revoke``, as
   mod_auth_openidc does) finds nothing locked;
3. record the outcomes (one short transaction): delivered; or failed, retried
   after ``outbox_backoff`` × 2^(attempt−1) seconds; or dead after
   ``outbox_max_attempts`` attempts, or at once when the receiver refuses the
   message itself (by default a 4xx other than 408 and 429; a kind may say
   otherwise, ``Kind.permanent``). Each outcome is audited with the kind's
   tag, never with the message body.

Who delivers (``outbox_delivery``): ``thread``, a thread of the app woken after
each request that queued something (the resident is answered at once), plus
``idp worker`` for retries; ``worker``, only ``idp worker``; ``inline``
(tests), at the end of the request that queued it, after its transaction has
ended. ``idp`` commands deliver what they queued right after their commit.
Dead letters are listed by ``idp worker dead`` and on the console's system page.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import requests
from flask import Flask
from flask import current_app
from flask import g
from flask import has_app_context
from sqlalchemy import select
from sqlalchemy import update

from idp import config
from idp import metrics
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db
from idp.outbox.models import DEAD
from idp.outbox.models import DELIVERED
from idp.outbox.models import PENDING
from idp.outbox.models import OutboxMessage

log = logging.getLogger(__name__)

EXTENSION = "idp.outbox"
LEASE = dt.timedelta(minutes=5)
MAX_BACKOFF = dt.timedelta(hours=6)
MAX_PARALLEL = 8
POLL_SECONDS = 10
DELIVERY_MODES = ("thread", "worker", "inline")


class OutboxError(RuntimeError):
    pass


@dataclass(frozen=True)
class Body:
    """A rendered message POSTed as it is, with its own media type (e.g. a SET,
    ``application/secevent+jwt``), rather than as form fields."""

    content: str
    content_type: str
    accept: str | None = None


def refused(outcome: dict[str, Any]) -> bool:
    """The receiver refused the message itself: sending it again cannot help."""
    status = outcome.get("status") or 0
    return 400 <= status < 500 and status not in (408, 429)


@dataclass(frozen=True)
class Kind:
    """How one kind of message is rendered, sent and audited."""

    name: str
    # Form fields (or a ``Body``) to POST for a claimed row; runs inside the
    # claim transaction.
    render: Callable[[OutboxMessage], dict[str, str] | Body]
    audit_tag: AuditTag
    timeout: Callable[[], int]
    # How a rendered message is sent: (target, fields, timeout) → outcome, with
    # no transaction open and no app context (a worker thread). Default: POST
    # the fields (or the body) to the target. ``result`` is "delivered" or
    # "failed"; a failed outcome that ``permanent`` holds refused is not retried.
    send: Callable[[str, dict[str, str], int], dict[str, Any]] | None = None
    permanent: Callable[[dict[str, Any]], bool] = refused


@dataclass
class _Job:
    id: int
    kind: Kind
    target: str
    attempts: int
    timeout: int
    audit: dict[str, Any]
    fields: dict[str, str] | Body | None = None
    error: str | None = None
    outcome: dict[str, Any] = field(default_factory=dict)


def _state() -> Outbox:
    return current_app.extensions[EXTENSION]


def register(app: Flask, kind: Kind) -> None:
    """Make a kind deliverable in this app (called by the module that owns it)."""
    app.extensions[EXTENSION].kinds[kind.name] = kind


# ---- queueing -----------------------------------------------------------------------------

def enqueue(kind: str, target: str, payload: dict[str, Any], *, resident_id: str | None = None,
            client_id: str | None = None, company_id: str | None = None,
            audit: dict[str, Any] | None = None,
            same_as: Any = None) -> OutboxMessage | None:
    """Queue a message in the caller's transaction; it is delivered once that commits.

    An identical message (kind, target, payload) still waiting for its first
    attempt is not queued twice: one change that both ends a session and
    revokes its tokens sends one logout token. ``same_as`` (JSON) replaces the
    payload in that comparison when the payload carries values unique to each
    message (a SET's ``jti``). ``audit`` is the data of the outcome's audit
    record; the admin acting in this request is kept with it.
    Returns the row, or None when an identical one was already waiting.
    """
    identity = payload if same_as is None else same_as
    key = hashlib.sha256(json.dumps([kind, target, identity], sort_keys=True).encode()).hexdigest()
    waiting = db.session.scalar(select(OutboxMessage.id).where(
        OutboxMessage.dedupe_key == key, OutboxMessage.status == PENDING,
        OutboxMessage.attempts == 0))
    if has_app_context():
        g.idp_outbox_enqueued = True
    if waiting is not None:
        return None
    context = {"data": dict(audit or {})}
    if has_app_context() and g.get("audit_admin_id"):
        context.update(admin_id=g.audit_admin_id, actor="admin")
    message = OutboxMessage(kind=kind, target=target, payload=payload, context=context,
                            resident_id=resident_id, client_id=client_id,
                            company_id=company_id, dedupe_key=key, status=PENDING,
                            attempts=0, next_attempt_at=utcnow())
    db.session.add(message)
    db.session.flush()
    metrics.at_commit(db.session(), metrics.OUTBOX_MESSAGES, kind=kind, result="queued")
    return message


def forget_resident(resident_id: str) -> int:
    """Account deletion: no queued or past message names the resident any more."""
    return db.session.execute(
        update(OutboxMessage).where(OutboxMessage.resident_id == resident_id)
        .values(resident_id=None).execution_options(synchronize_session=False)).rowcount


# ---- delivery -----------------------------------------------------------------------------

def deliver_due(limit: int = 50) -> list[dict[str, Any]]:
    """Deliver up to ``limit`` due messages (see the module doc); returns one dict per
    message: ``client_id``, ``result`` (delivered or failed) and ``status`` or ``error``.

    Must be called with no transaction open: it commits its own, and waiting
    on a receiver inside the caller's transaction is what it exists to avoid.
    """
    if db.session().in_transaction():
        raise OutboxError("deliver_due() must be called outside a transaction; commit first")
    jobs = _claim(limit)
    if not jobs:
        return []
    sendable = [job for job in jobs if job.fields is not None]
    if sendable:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(sendable))) as pool:
            for job, outcome in zip(sendable, pool.map(_send, sendable), strict=True):
                job.outcome = outcome
    for job in jobs:
        if job.fields is None:
            job.outcome = {"result": "failed", "error": job.error or "render"}
    return _record_outcomes(jobs)


def _claim(limit: int) -> list[_Job]:
    kinds = _state().kinds
    now = utcnow()
    try:
        rows = list(db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now,
                   OutboxMessage.kind.in_(list(kinds)))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            # PostgreSQL: rows another worker is claiming are skipped, not waited
            # for. SQLite renders no FOR UPDATE (BEGIN IMMEDIATE serialises).
            .with_for_update(skip_locked=True)))
        jobs = []
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + LEASE
            job = _Job(id=row.id, kind=kinds[row.kind], target=row.target,
                       attempts=row.attempts, timeout=kinds[row.kind].timeout(),
                       audit={"resident_id": row.resident_id, "client_id": row.client_id,
                              "company_id": row.company_id, **row.context})
            try:
                job.fields = job.kind.render(row)
            except Exception as exc:  # noqa: BLE001 - one bad row must not block the others
                log.exception("outbox message %s could not be rendered", row.id)
                job.error = type(exc).__name__
            jobs.append(job)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return jobs


def _send(job: _Job) -> dict[str, Any]:
    if job.kind.send is not None:
        return job.kind.send(job.target, job.fields, job.timeout)
    return _post(job)


def _post(job: _Job) -> dict[str, Any]:
    if isinstance(job.fields, Body):
        data: Any = job.fields.content.encode("utf-8")
        headers = {"Content-Type": job.fields.content_type}
        if job.fields.accept:
            headers["Accept"] = job.fields.accept
    else:
        data, headers = job.fields, {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        response = requests.post(job.target, data=data, timeout=job.timeout,
                                 allow_redirects=False, headers=headers)
    except requests.Timeout:
        return {"result": "failed", "error": "timeout"}
    except requests.RequestException as exc:
        return {"result": "failed", "error": type(exc).__name__}
    if 200 <= response.status_code < 300:
        return {"result": "delivered", "status": response.status_code}
    return {"result": "failed", "status": response.status_code, **_error_code(response)}


def _error_code(response: requests.Response) -> dict[str, str]:
    """A receiver's error code, when it gives one the way RFC 8935 §2.3 says
    (``{"err": "invalid_key", "description": …}``): the code only, at most 40
    characters; the description is the receiver's prose and is not kept."""
    if response.status_code != 400 or "json" not in response.headers.get("Content-Type", ""):
        return {}
    try:
        err = response.json().get("err")
    except (ValueError, AttributeError):
        return {}
    if isinstance(err, str) and err.isascii() and err.isprintable():
        return {"err": err[:40]}
    return {}


def _record_outcomes(jobs: list[_Job]) -> list[dict[str, Any]]:
    settings = config.settings()
    now = utcnow()
    results = []
    try:
        for job in jobs:
            row = db.session.get(OutboxMessage, job.id)
            outcome = dict(job.outcome)
            extra: dict[str, Any] = {}
            if outcome["result"] == "delivered":
                row.status, row.delivered_at, row.last_error = DELIVERED, now, None
                row.payload = {}
            else:
                row.last_error = str(outcome.get("error") or f"HTTP {outcome.get('status')}"
                                     + (f" {outcome['err']}" if outcome.get("err") else ""))
                extra["attempt"] = job.attempts
                if job.kind.permanent(outcome) or job.attempts >= settings.outbox_max_attempts:
                    row.status = DEAD
                    extra["dead"] = True
                else:
                    delay = min(dt.timedelta(seconds=settings.outbox_backoff
                                             * 2 ** (job.attempts - 1)), MAX_BACKOFF)
                    row.next_attempt_at = now + delay
                    extra["retry_at"] = row.next_attempt_at.isoformat(timespec="seconds")
            audit = job.audit
            record(job.kind.audit_tag, anonymous=True, actor=audit.get("actor"),
                   admin_id=audit.get("admin_id"), resident_id=audit["resident_id"],
                   client_id=audit["client_id"], company_id=audit["company_id"],
                   **audit.get("data", {}), **outcome, **extra)
            results.append({"client_id": audit["client_id"], **outcome})
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return results


def dead_letters(limit: int = 100) -> list[OutboxMessage]:
    """Messages given up on, newest first (the console's system page, ``idp worker dead``)."""
    return list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == DEAD)
        .order_by(OutboxMessage.id.desc()).limit(limit)))


def retry(message_id: int) -> OutboxMessage | None:
    """Put a dead letter back in the queue for one more round of attempts."""
    row = db.session.get(OutboxMessage, message_id)
    if row is None or row.status != DEAD:
        return None
    row.status, row.attempts, row.next_attempt_at = PENDING, 0, utcnow()
    return row


# ---- who delivers -------------------------------------------------------------------------

class Outbox:
    """Per app: the registered kinds and the delivery thread (started on first use, so
    a process that forks after creating the app starts its own)."""

    def __init__(self, app: Flask):
        self.app = app
        self.kinds: dict[str, Kind] = {}
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def wake(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="idp-outbox",
                                                daemon=True)
                self._thread.start()
            self._idle.clear()
            self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once the thread has delivered everything it was woken for (tests)."""
        return self._idle.wait(timeout)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.set()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait(POLL_SECONDS)
            with self._lock:
                if self._stopping:
                    self._idle.set()
                    return
                self._wake.clear()
            deliver_in_new_context(self.app)
            with self._lock:
                if not self._wake.is_set():
                    self._idle.set()


def deliver_in_new_context(app: Flask) -> list[dict[str, Any]]:
    """Deliver everything due, in an app context of its own: no request, no ``g``, no
    session shared with the caller. Returns the outcomes (see ``deliver_due``)."""

    def run() -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        with app.app_context():
            try:
                while batch := deliver_due():
                    results.extend(batch)
            except Exception:  # a delivery failure must not kill the thread or the answer
                log.exception("outbox delivery failed")
            finally:
                db.session.remove()
        return results

    return contextvars.Context().run(run)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Outbox(app)

    @app.teardown_request
    def deliver_after_commit(exc: BaseException | None) -> None:
        """A request that queued messages has committed or rolled back by now."""
        deliver_enqueued(app)


def deliver_enqueued(app: Flask) -> None:
    """The end of a unit of work (a request's, through Flask or beneath it in
    ``idp.oauth.direct``) that may have queued messages and has committed or rolled back
    by now: wake the deliverer, or deliver them here (``outbox_delivery``)."""
    if not g.pop("idp_outbox_enqueued", False):
        return
    mode = config.settings().outbox_delivery
    if mode == "thread":
        app.extensions[EXTENSION].wake()
    elif mode == "inline":
        db.session.rollback()  # end the request's transaction (Flask-SQLAlchemy would)
        deliver_in_new_context(app)
