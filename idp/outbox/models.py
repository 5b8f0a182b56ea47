"""One row per message to another server (a back-channel logout token, a security event
token, mail), from the transaction that caused it to its delivery or dead letter."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base
from idp.db import created_at
from idp.db import utcnow

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        # deliver_due(): the oldest due pending rows.
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    # Where the message is POSTed (a client's backchannel_logout_uri or
    # event_receiver_uri; a mail's address).
    target: Mapped[str] = mapped_column(String(500))
    # What the kind renders into the request body at each attempt. A logout
    # token lives two minutes (its ``exp``), so it is signed per attempt from
    # these claims rather than stored signed; delivered rows keep {}.
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Context of the audit record of each outcome (reason, the admin who acted).
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Plain columns, not foreign keys: a message outlives a deleted client, and
    # an account deletion clears resident_id (``forget_resident``).
    resident_id: Mapped[str | None] = mapped_column(String(40))
    client_id: Mapped[str | None] = mapped_column(String(40))
    company_id: Mapped[str | None] = mapped_column(String(40))
    # Identical undelivered messages are queued once (see ``enqueue``).
    dedupe_key: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[created_at]
    delivered_at: Mapped[dt.datetime | None]
