"""How often each access token is read (userinfo, resource APIs), for the monitoring.

A counter per token and five-minute bucket, incremented by the bearer-token check
(``idp.oauth.server``) after a token was accepted; the monitoring's ``token_reads``
rule sums buckets into windows and compares one token with the company's usual
reads per token. Rows go with their token (``ON DELETE CASCADE``), so they hold no
more than the tokens table does.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base
from idp.db import dialect_insert
from idp.db import utcnow
from idp.extensions import db

BUCKET = dt.timedelta(minutes=5)


class TokenRead(Base):
    """Reads of one access token within one five-minute bucket."""

    __tablename__ = "token_reads"

    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id", ondelete="CASCADE"),
                                          primary_key=True)
    bucket: Mapped[dt.datetime] = mapped_column(primary_key=True, index=True)
    client_id: Mapped[str] = mapped_column(String(40))
    company_id: Mapped[str] = mapped_column(String(16), index=True)
    count: Mapped[int] = mapped_column(default=0)


def bucket_of(when: dt.datetime) -> dt.datetime:
    seconds = int(BUCKET.total_seconds())
    epoch = int(when.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, dt.UTC)


def count(token) -> None:
    """One read of ``token`` now (one statement: insert the bucket or add one)."""
    client = token.client
    statement = dialect_insert(db.session, TokenRead).values(
        token_id=token.id, bucket=bucket_of(utcnow()), client_id=client.id,
        company_id=client.company_id, count=1)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["token_id", "bucket"], set_={"count": TokenRead.count + 1}))
