"""Sealing the audit trail in tests, as ``idp worker`` does every second.

On PostgreSQL the sealer takes only entries of transactions older than every
transaction still running in the cluster (``idp.audit.chain``), and the test
server is shared with other test runs: their open transactions hold sealing
back for a moment. ``seal_all`` therefore seals until nothing committed is left
unsealed, looking again a few times a second (never asserting on time).
"""

from __future__ import annotations

import threading

from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.cli.audit import seal_pending
from idp.extensions import db


def all_sealed() -> bool:
    return db.session.scalar(select(AuditEvent.id).where(AuditEvent.seq.is_(None))
                             .limit(1)) is None


def seal_until(done=all_sealed, attempts: int = 600, batch: int | None = None) -> None:
    """Seal (in the app context's session, committing) until ``done()``; ``batch``: at
    most that many entries per head."""
    for _ in range(attempts):
        db.session.rollback()
        seal_pending(**({"batch": batch} if batch else {}))
        db.session.rollback()
        if done():
            return
        threading.Event().wait(0.05)
    raise AssertionError("the audit entries were never sealed")


def seal_all() -> None:
    seal_until(all_sealed)


def seal_in_batches(limit: int) -> None:
    """Seal ``limit`` entries at a time, one head per batch, until nothing committed is
    left unsealed."""
    seal_until(all_sealed, batch=limit)
