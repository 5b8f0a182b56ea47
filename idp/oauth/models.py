"""Used client-assertion ids: protocol-only state of the token endpoint.

Sessions, codes, tokens, device codes and pairwise subjects are the floor of
access (``idp.access.models``), which every domain may call.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base


class UsedClientAssertion(Base):
    """jti values of private_key_jwt assertions, kept until they expire (RFC 7523 §3)."""

    __tablename__ = "used_client_assertions"

    jti_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    expires_at: Mapped[dt.datetime]
