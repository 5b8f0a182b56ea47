"""Browser sessions: a resident's sign-in on one browser, started, found and ended.

The resident is known by its row (``resident.id``); the sign-in is audited
when the session starts, the sign-out when it ends.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from idp import config
from idp import secrets
from idp.access.models import BrowserSession
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db


def start_session(resident, amr: list[str] | None = None
                  ) -> tuple[str, BrowserSession]:
    """A new session for this browser; returns the cookie value and the row.

    This is the moment the sign-in succeeds, so it is audited here, with the
    methods used (RFC 8176 ``amr``).
    """
    settings = config.settings()
    sid = secrets.token(32)
    now = utcnow()
    amr = list(amr or ["pwd"])
    row = BrowserSession(
        sid_digest=secrets.digest(sid),
        resident_id=resident.id,
        auth_time=now,
        expires_at=now + dt.timedelta(seconds=settings.session_ttl),
        amr=amr,
    )
    db.session.add(row)
    db.session.flush()
    record(AuditTag.LOGIN_SUCCESS, resident_id=resident.id, amr=amr)
    return sid, row


def load_session(sid: str | None) -> BrowserSession | None:
    if not sid:
        return None
    row = db.session.scalar(
        select(BrowserSession).where(BrowserSession.sid_digest == secrets.digest(sid))
    )
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    return row


