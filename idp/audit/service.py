"""record(): add an audit event to the caller's transaction."""

from __future__ import annotations

from typing import Any

from flask import has_request_context
from flask import request

from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.extensions import db


def record(
    tag: AuditTag,
    *,
    actor: str | None = None,
    resident_id: str | None = None,
    client_id: str | None = None,
    company_id: str | None = None,
    **data: Any,
) -> AuditEvent:
    """Add an event to the current session; it commits or rolls back with the change."""
    ip = user_agent = None
    if has_request_context():
        ip = request.remote_addr
        user_agent = (request.user_agent.string or "")[:300] or None
    event = AuditEvent(
        tag=str(tag),
        actor=actor,
        resident_id=resident_id,
        client_id=client_id,
        company_id=company_id,
        ip=ip,
        user_agent=user_agent,
        data=data,
    )
    db.session.add(event)
    return event
