"""AuditEvent: an append-only trail, sealed into a hash chain; AuditHead: the signed heads.

A request appends its event as an *entry*: every column, its
``personal_digest`` and an append-order ``id`` from the table's sequence, but
no place in the chain yet (``seq``, ``prev_digest``, ``digest`` and
``format`` are NULL), taking no lock another writer needs. The sealer
(``idp.audit.chain.seal``, run by ``idp worker``) later takes the committed
entries in a well-defined order, gives them contiguous chain positions
(``seq``) and digests, and writes one signed ``AuditHead`` per batch, like a
Certificate Transparency log's Signed Tree Head. Changing, inserting or
removing a sealed row breaks the chain at that row; ``idp audit verify``
names the first broken link.

Append-only is enforced three times: the ORM refuses to update or delete a
loaded row (``AppendOnlyError``), database triggers refuse UPDATE and DELETE
(``idp.audit.guard``, created by the migrations), and the chain makes any
change made around both visible. The triggers let two changes through: the
sealer's one-time setting of ``seq``, ``prev_digest``, ``digest`` and
``format`` on an unsealed row, and the redaction of the personal columns when
a resident deletes their ID (``idp.audit.service.deidentify_resident``); the
chain covers those columns only through ``personal_digest``, so a redaction
leaves it intact.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import Index
from sqlalchemy import SmallInteger
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base
from idp.db import utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    # Append order (the table's sequence): assigned at insert, so it may have gaps
    # (rolled-back transactions) and, on PostgreSQL, commit in another order.
    id: Mapped[int] = mapped_column(primary_key=True)
    # Position in the chain: 1, 2, 3 … in sealing order, without gaps; NULL until sealed.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
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
    # PostgreSQL: the appending transaction's id (``pg_current_xact_id()``); the sealer
    # takes only entries of transactions that have ended (``idp.audit.chain``).
    xid: Mapped[int | None] = mapped_column(BigInteger)
    # Set once, by the sealer: the digest format (1 or 2), and the chain links.
    format: Mapped[int | None] = mapped_column(SmallInteger)
    prev_digest: Mapped[str | None] = mapped_column(String(64))
    digest: Mapped[str | None] = mapped_column(String(64), unique=True)

    __table_args__ = (
        # The unsealed tail, small however long the trail grows (the sealer's and the
        # lag metric's query).
        Index("ix_audit_events_unsealed", "id", postgresql_where=text("seq IS NULL"),
              sqlite_where=text("seq IS NULL")),
    )

    @property
    def redacted(self) -> bool:
        return self.personal_salt is None

    @property
    def sealed(self) -> bool:
        return self.seq is not None


class AuditHead(Base):
    """A sealed head: the chain up to ``seq`` ends in ``digest``, sealed at ``sealed_at``.

    One row per sealing batch, never changed (triggers). ``signature`` is a JWS
    (compact) by the IdP's signing key ``kid`` over the head's statement
    (``idp.audit.chain.head_statement``), so a chain rebuilt by someone who can
    write the database but has no signing key shows. Format 1 is the one
    unsigned head the sealing migration wrote for the chain that existed then.
    """

    __tablename__ = "audit_heads"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    format: Mapped[int] = mapped_column(SmallInteger)
    kid: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(Text)


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(mapper: Any, connection: Any, target: AuditEvent) -> None:
    raise AppendOnlyError("audit events are append-only")


@event.listens_for(AuditHead, "before_update")
def _refuse_head_update(mapper: Any, connection: Any, target: AuditHead) -> None:
    raise AppendOnlyError("audit heads are append-only")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(mapper: Any, connection: Any, target: AuditEvent) -> None:
    raise AppendOnlyError("audit events are append-only")
