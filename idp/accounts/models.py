"""Resident (the consortium ID) and BrowserSession (a sign-in on one browser)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base
from idp.db import created_at
from idp.db import utcnow
from idp.secrets import random_id


class Gender(enum.StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


def new_consortium_id() -> str:
    # 16 Crockford base32 characters = 80 random bits; never sequential.
    return random_id(16)


class Resident(Base):
    __tablename__ = "residents"

    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=new_consortium_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    email_verified: Mapped[bool] = mapped_column(default=False)
    password_hash: Mapped[str] = mapped_column(String(255))
    family_name: Mapped[str | None] = mapped_column(String(100))
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name_kana: Mapped[str | None] = mapped_column(String(100))
    given_name_kana: Mapped[str | None] = mapped_column(String(100))
    birth_year: Mapped[int | None]
    gender: Mapped[str | None] = mapped_column(String(16))
    postal_code: Mapped[str | None] = mapped_column(String(8))
    locality: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def display_id(self) -> str:
        """The consortium ID grouped for reading: XXXX-XXXX-XXXX-XXXX."""
        return "-".join(self.id[i : i + 4] for i in range(0, len(self.id), 4))

    def __repr__(self) -> str:
        return f"<Resident {self.id}>"


class BrowserSession(Base):
    """A resident's sign-in on one browser.

    The cookie carries a random session id; the table keeps only its digest,
    so a database reader cannot ride a session. Ending the row ends the
    session everywhere at once (logout, password reset, account deletion).
    """

    __tablename__ = "browser_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid_digest: Mapped[str] = mapped_column(String(64), unique=True)
    resident_id: Mapped[str] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    auth_time: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]
