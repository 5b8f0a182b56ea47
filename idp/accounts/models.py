"""Resident (the consortium ID), the resident's TOTP recovery codes, passkeys and
their single-use challenges, and the single-use record of emailed links. A sign-in
on one browser is a ``BrowserSession`` (``idp.access.models``)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base
from idp.db import created_at
from idp.db import utcnow
from idp.secrets import random_id
from idp.security.passkey_columns import PasskeyColumns


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
    # A new address waiting for its verification link; it replaces `email`
    # only once the link is followed (idp.accounts.profile).
    pending_email: Mapped[str | None] = mapped_column(String(254))
    # The page language when the resident last chose one: mail is written in it.
    locale: Mapped[str | None] = mapped_column(String(8))
    # The consortium terms version the resident accepted, and when (idp.terms).
    terms_version: Mapped[str | None] = mapped_column(String(40))
    terms_accepted_at: Mapped[dt.datetime | None]
    # RFC 6238 second factor: base32 secret, set only while enabled, and the
    # last time step accepted, so a code cannot be replayed in its window.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[dt.datetime | None]
    totp_last_counter: Mapped[int | None]
    # Set while the resident has asked to be left out of the city's statistics
    # (idp.accounts.statistics): exports leave them out of every breakdown.
    statistics_opt_out_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def totp_enabled(self) -> bool:
        return self.totp_secret is not None and self.totp_enabled_at is not None

    @property
    def display_id(self) -> str:
        """The consortium ID grouped for reading: XXXX-XXXX-XXXX-XXXX."""
        return "-".join(self.id[i : i + 4] for i in range(0, len(self.id), 4))

    def __repr__(self) -> str:
        return f"<Resident {self.id}>"


class RecoveryCode(Base):
    """A one-time TOTP recovery code; only its SHA-256 digest is kept (80 random bits)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[str] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[created_at]
    used_at: Mapped[dt.datetime | None]


class UsedLink(Base):
    """An emailed link that has done its job: a second use finds its row.

    Keyed by the SHA-256 of the purpose and the link's random nonce; no
    resident id or address, so the table holds nothing personal. Rows are
    purged once the link would have expired anyway.
    """

    __tablename__ = "used_links"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    used_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class Passkey(PasskeyColumns, Base):
    """A resident's WebAuthn credential (idp.accounts.passkeys); the columns are the
    shared ones of ``idp.security.passkey_columns``."""

    __tablename__ = "passkeys"

    resident_id: Mapped[str] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )


class PasskeyChallenge(Base):
    """A WebAuthn challenge handed to one browser: used once (``used_at`` set by
    ``idp.db.claim_once``) and only before ``expires_at``. ``purpose`` and
    ``subject`` (the resident or admin adding a passkey) bind it to its ceremony."""

    __tablename__ = "passkey_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(24))
    subject: Mapped[str | None] = mapped_column(String(16))
    challenge: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    used_at: Mapped[dt.datetime | None]


class RegistrationInvitation(Base):
    """A registration link that was mailed: the link carries only a random token,
    this row keeps the SHA-256 of that token with the address it was sent to.

    The address therefore never appears in a URL (browser history, proxy and
    server logs, the Referer of the next page). The row is used up when the
    consortium ID is issued (``used_at``) and purged a while after it expired.
    """

    __tablename__ = "registration_invitations"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str | None] = mapped_column(String(8))
    interaction: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    used_at: Mapped[dt.datetime | None]
