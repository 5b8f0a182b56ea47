"""AuditEvent: an append-only, hash-chained trail; AuditChainHead: where the chain ends.

Each event carries ``seq`` (its place in the chain), ``prev_digest`` (the
digest of the event before it) and its own ``digest`` over everything it
says (``idp.audit.chain``). Changing, inserting or removing a row breaks the
chain at that row; ``idp audit verify`` names the first broken link.

Append-only is enforced three times: the ORM refuses to update or delete a
loaded row (``AppendOnlyError``), database triggers refuse UPDATE and DELETE
(``idp.audit.guard``, created by the migration), and the chain makes any
change made around both visible. The one change the triggers let through is
the redaction of the personal columns when a resident deletes their ID
(``idp.audit.service.deidentify_resident``); the chain covers those columns
only through ``personal_digest``, so a redaction leaves the chain intact.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import String
from sqlalchemy import event
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base
from idp.db import utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Position in the chain: 1, 2, 3 … in commit order, without gaps.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    tag: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(100))
    # The consortium admin whose console request wrote the event (idp.admin).
    admin_id: Mapped[str | None] = mapped_column(String(16), index=True)
    resident_id: Mapped[str | None] = mapped_column(String(16), index=True)
    client_id: Mapped[str | None] = mapped_column(String(40), index=True)
    company_id: Mapped[str | None] = mapped_column(String(16), index=True)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The personal columns (resident_id, ip, user_agent) enter the chain as a
    # salted digest; redaction clears them and the salt, the digest stays.
    personal_salt: Mapped[str | None] = mapped_column(String(32))
    personal_digest: Mapped[str] = mapped_column(String(64))
    prev_digest: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64), unique=True)

    @property
    def redacted(self) -> bool:
        return self.personal_salt is None


class AuditChainHead(Base):
    """One row (id 1): the last event's ``seq`` and ``digest``.

    Appending locks this row (``SELECT … FOR UPDATE``), so two transactions
    can never both chain onto the same event; it also lets ``verify`` notice
    events removed from the end of the chain.
    """

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(mapper: Any, connection: Any, target: AuditEvent) -> None:
    raise AppendOnlyError("audit events are append-only")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(mapper: Any, connection: Any, target: AuditEvent) -> None:
    raise AppendOnlyError("audit events are append-only")
