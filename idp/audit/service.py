"""record(): add an audit event to the caller's transaction.

``record()`` keeps the event with the session, and just before the commit
(``before_commit``) every event of the transaction is written as an unsealed
entry in one INSERT (``chain.append``). No lock is taken that another writer
needs: the hash chain is made after the commit, in batches, by the sealer
(``chain.seal``, run by ``idp worker``). The event commits or rolls back with
the change it describes: a rollback (also of a savepoint the event was
recorded in) discards it.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets as std_secrets
from dataclasses import dataclass
from typing import Any

from flask import g
from flask import has_app_context
from flask import has_request_context
from flask import request
from sqlalchemy import Select
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import SessionTransaction

from idp import metrics
from idp.audit import chain
from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db

PENDING = "idp.audit.pending"


@dataclass(slots=True)
class Entry:
    """An event recorded in the open transaction, appended at its commit
    (``chain.append``): the columns of an ``AuditEvent`` entry, as a plain object.
    An ORM instance cost a third of ``record()`` for attributes nobody tracks (the
    entry is never flushed through the session; docs/performance.md)."""

    tag: str
    at: dt.datetime
    actor: str | None
    admin_id: str | None
    resident_id: str | None
    client_id: str | None
    company_id: str | None
    ip: str | None
    user_agent: str | None
    data: dict[str, Any]
    personal_salt: str | None
    personal_digest: str | None = None


def record(tag: AuditTag, **fields: Any) -> Entry:
    """Add an event to the current transaction; it commits or rolls back with the change.
    ``fields`` are :func:`entry`'s."""
    event = entry(tag, **fields)
    session = db.session()
    if session.get_transaction() is None:
        # Start the session's transaction (no database round trip yet), so
        # a rollback before any query still discards this event.
        session.begin()
    session.info.setdefault(PENDING, []).append((_transaction(session), event))
    return event


def entry(
    tag: AuditTag,
    *,
    actor: str | None = None,
    admin_id: str | None = None,
    resident_id: str | None = None,
    client_id: str | None = None,
    company_id: str | None = None,
    anonymous: bool = False,
    caller: tuple[str | None, str | None] | None = None,
    **data: Any,
) -> Entry:
    """An event, made but not added to any transaction: ``record()`` adds it to the
    current one; a statement that writes it with the change it describes takes its
    columns from ``chain.entry_row``.

    ``anonymous`` leaves out the request's IP address and user agent (the
    record of an account deletion must not hold personal data). During an
    admin console request the signed-in admin is recorded as well
    (``g.audit_admin_id``, set by ``idp.admin.auth``), so every event an
    admin's action causes names them. ``caller`` gives the IP address and user agent of
    a request answered outside Flask (``idp.oauth.direct``).
    """
    ip = user_agent = None
    if caller is not None and not anonymous:
        ip, user_agent = caller
    elif has_request_context() and not anonymous:
        ip = request.remote_addr
        user_agent = request.headers.get("User-Agent", "")[:300] or None
    if admin_id is None and has_app_context() and g.get("audit_admin_id"):
        admin_id = g.audit_admin_id
        actor = actor or "admin"
    event = Entry(
        tag=str(tag),
        at=utcnow(),
        actor=actor,
        admin_id=admin_id,
        resident_id=resident_id,
        client_id=client_id,
        company_id=company_id,
        ip=ip,
        user_agent=user_agent,
        # What is chained is exactly what the database gives back later.
        data=json.loads(json.dumps(data, ensure_ascii=False)),
        personal_salt=std_secrets.token_hex(16),
    )
    return event


def pending_events() -> list[Entry]:
    """Events recorded in the current transaction and not yet committed."""
    return [event for _, event in db.session().info.get(PENDING, [])]


def _transaction(session: Session) -> SessionTransaction | None:
    return session.get_nested_transaction() or session.get_transaction()


def init_app(app: Any) -> None:
    """Called by ``create_app``: append events at commit, drop them at rollback.

    The listeners are process-wide (every SQLAlchemy ``Session``) and installed
    once however many apps a process creates.
    """
    metrics.init_session_events()
    for name, listener in (("before_commit", _append_pending),
                           ("after_soft_rollback", _discard_rolled_back),
                           ("after_transaction_end", _forget_on_close)):
        if not sa_event.contains(Session, name, listener):
            sa_event.listen(Session, name, listener)


def _append_pending(session: Session) -> None:
    # Also called when a savepoint is released: append only at the real commit.
    if session.get_nested_transaction() is not None:
        return
    pending = session.info.pop(PENDING, None)
    if pending:
        events = [event for _, event in pending]
        chain.append(session, events)
        # Counted once the commit succeeds (docs/metrics.md).
        metrics.count_events(session, events)


def _discard_rolled_back(session: Session, previous: SessionTransaction) -> None:
    pending = session.info.get(PENDING)
    if not pending:
        return
    if previous.parent is None:
        session.info.pop(PENDING, None)
        return

    def inside(transaction: SessionTransaction | None) -> bool:
        while transaction is not None:
            if transaction is previous:
                return True
            transaction = transaction.parent
        return False

    session.info[PENDING] = [(t, e) for t, e in pending if not inside(t)]


def _forget_on_close(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without a commit appending the events
    # (e.g. the session was closed): they never happened.
    if transaction.parent is None and not transaction.nested:
        session.info.pop(PENDING, None)


def deidentify_resident(resident_id: str) -> int:
    """Strip a deleted resident from the trail: resident id, IP address and user agent.

    The one sanctioned change to written events (account deletion, see
    docs/accounts.md): the rows stay, so the trail still counts what each
    company received and when, but nothing in them points at a person any
    more. The database triggers allow exactly this change (``idp.audit.guard``),
    on sealed and unsealed entries alike, and the chain stays intact, because
    it covers these columns only through ``personal_digest`` (fixed when the
    entry is appended); clearing ``personal_salt`` marks the row redacted.
    A bulk UPDATE, so the ORM's append-only guard (which watches changes to
    loaded rows) is not involved. Events of this transaction not yet
    written are scrubbed before they are appended. The deletion event that
    calls this records how many stored rows were redacted; ``idp audit
    verify`` checks that every redacted row is accounted for that way.
    """
    for event in pending_events():
        if event.resident_id == resident_id:
            event.resident_id = event.ip = event.user_agent = None
    return db.session.execute(
        update(AuditEvent).where(AuditEvent.resident_id == resident_id)
        .values(resident_id=None, ip=None, user_agent=None, personal_salt=None)
        .execution_options(synchronize_session=False)
    ).rowcount


# ---- the trail's part of privacy operations (idp.privacy) ----------------------------

def export_resident(resident_id: str, names) -> dict:
    """The resident's part of a data export: the full audit trail about them, oldest
    first. ``names`` names clients and companies for people."""
    return {"history": [
        {"at": e.at, "event": e.tag,
         **(names.service(e.client_id) if e.client_id else
            {"company_id": e.company_id, "company": names.company(e.company_id)}
            if e.company_id else {}),
         "ip": e.ip, "user_agent": e.user_agent, "details": e.data}
        for e in db.session.scalars(select(AuditEvent)
                                    .where(AuditEvent.resident_id == resident_id)
                                    .order_by(AuditEvent.at, AuditEvent.id))
    ]}


def forget_resident(resident_id: str) -> dict[str, int]:
    """The trail's part of an account deletion (``deidentify_resident``)."""
    return {"audit_events_deidentified": deidentify_resident(resident_id)}


def history_rows(resident_id: str, tags, company_id: str | None = None) -> Select:
    """The resident's usage record from the trail (``idp.privacy.history``): the ids and
    times of the events with one of ``tags``, of one company if given."""
    query = (select(AuditEvent.id.label("row_id"), AuditEvent.at.label("at"))
             .where(AuditEvent.resident_id == resident_id,
                    AuditEvent.tag.in_([str(t) for t in tags])))
    if company_id:
        query = query.where(AuditEvent.company_id == company_id)
    return query


def history_companies(resident_id: str, tags) -> Select:
    """The companies that appear in the resident's usage record from the trail."""
    return select(AuditEvent.company_id).where(
        AuditEvent.resident_id == resident_id, AuditEvent.company_id.is_not(None),
        AuditEvent.tag.in_([str(t) for t in tags]))


def history_events(row_ids) -> dict[int, AuditEvent]:
    """The events of a usage-record page, by id."""
    if not row_ids:
        return {}
    return {e.id: e for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.id.in_(row_ids)))}
