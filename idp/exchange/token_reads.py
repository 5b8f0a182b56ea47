"""How often each access token is read (userinfo, resource APIs), for the monitoring.

The bearer-token check (``idp.oauth.server``) calls ``count`` after it accepted a
token. Reads are added up in the process and written as one row per token and
five-minute bucket (an upsert adding the reads), when the token's count reaches
``FLUSH_AT`` reads, when its first unwritten read is ``FLUSH_AFTER`` old, or when
its bucket is over — always during a read of that same token. So a token read a few
times writes nothing (UserInfo stays one query), a token read hundreds of times a
window writes every ``FLUSH_AT`` reads, and what a process holds for a token that is
never read again (at most ``FLUSH_AT`` − 1 reads) is lost: the count is a monitoring
signal, not an account.

No foreign key to ``tokens``: tokens come and go, their reads are kept for the
monitoring's baseline and purged by age (``purge``, run by ``idp worker``).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base
from idp.db import delete_where
from idp.db import dialect_insert
from idp.db import utcnow
from idp.extensions import db

BUCKET = dt.timedelta(minutes=5)
FLUSH_AT = 50
FLUSH_AFTER = dt.timedelta(seconds=60)


class TokenRead(Base):
    """Reads of one access token within one five-minute bucket."""

    __tablename__ = "token_reads"

    token_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    bucket: Mapped[dt.datetime] = mapped_column(primary_key=True, index=True)
    client_id: Mapped[str] = mapped_column(String(40))
    company_id: Mapped[str] = mapped_column(String(16), index=True)
    count: Mapped[int] = mapped_column(default=0)


@dataclass
class _Pending:
    client_id: str
    company_id: str
    since: dt.datetime
    reads: int = 0


# (token id, its issue time) → bucket → reads not written yet. The issue time tells a
# token from a later one that got the same id (SQLite reuses ids after a rollback).
# Kept per token, so that a read looks at its own token's buckets only: one dict
# keyed by (token, bucket) had every read scan the reads of every token held, a
# tenth of a touch-event batch with a thousand tokens in use (docs/performance.md).
_pending: dict[tuple[int, dt.datetime], dict[dt.datetime, _Pending]] = {}
_lock = threading.Lock()


def bucket_of(when: dt.datetime) -> dt.datetime:
    seconds = int(BUCKET.total_seconds())
    epoch = int(when.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, dt.UTC)


def count(token) -> None:
    """One read of ``token`` now; writes the token's due reads (see the module doc)."""
    now = utcnow()
    bucket = bucket_of(now)
    key = (token.id, token.issued_at)
    with _lock:
        buckets = _pending.setdefault(key, {})
        entry = buckets.get(bucket)
        if entry is None:
            client = token.client
            entry = buckets[bucket] = _Pending(client.id, client.company_id, now)
        entry.reads += 1
        taken = [(when, buckets.pop(when)) for when, held in list(buckets.items())
                 if when != bucket or held.reads >= FLUSH_AT or now - held.since >= FLUSH_AFTER]
        if not buckets:
            del _pending[key]
    for when, pending in taken:
        _write(token.id, when, pending)


def _write(token_id: int, bucket: dt.datetime, pending: _Pending) -> None:
    statement = dialect_insert(db.session, TokenRead).values(
        token_id=token_id, bucket=bucket, client_id=pending.client_id,
        company_id=pending.company_id, count=pending.reads)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["token_id", "bucket"],
        set_={"count": TokenRead.__table__.c.count + pending.reads}))


def flush() -> int:
    """Write every read this process holds (tests, and a process that stops)."""
    with _lock:
        taken = [(token_id, when, pending) for (token_id, _), buckets in _pending.items()
                 for when, pending in buckets.items()]
        _pending.clear()
    for token_id, when, pending in taken:
        _write(token_id, when, pending)
    return sum(pending.reads for _, _, pending in taken)


def forget() -> None:
    """Drop what this process holds unwritten (tests)."""
    with _lock:
        _pending.clear()


def purge(before: dt.datetime) -> int:
    """Delete the counts of buckets before ``before`` (older than any baseline)."""
    return delete_where(db.session, TokenRead, TokenRead.bucket < before)
