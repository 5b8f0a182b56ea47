"""Admin (a consortium administrator), AdminSession (a console sign-in) and
AdminFormToken (a console form that may be submitted once).

Admins are a separate population from residents: their own table, their own
cookie (``machi_id_admin``, path ``/admin``) and sessions. Every secret is
stored the way STYLE rule 6 asks: the password as argon2id (low entropy), the
enrolment token, session id and form tokens as SHA-256 digests (random, high
entropy). The TOTP secret must be readable to check codes, so it is kept as
is, like residents' (docs/security.md, known gaps).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from idp import secrets
from idp.db import Base
from idp.db import created_at
from idp.security.passkey_columns import PasskeyColumns


def new_admin_id() -> str:
    return secrets.random_id(12, "ad_")


class Admin(Base):
    __tablename__ = "admins"

    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=new_admin_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # Set at enrolment; NULL while the enrolment link is outstanding.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # RFC 6238 secret, made when the enrolment link is issued and confirmed
    # with a first code; the last accepted time step refuses replays.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None]
    enrolment_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrolment_expires_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]
    created_by: Mapped[str | None] = mapped_column(String(100))
    enrolled_at: Mapped[dt.datetime | None]
    disabled_at: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]

    @property
    def status(self) -> str:
        if self.disabled_at is not None:
            return "disabled"
        if self.enrolled_at is None:
            return "invited"
        return "active"

    @property
    def can_sign_in(self) -> bool:
        return (self.disabled_at is None and self.enrolled_at is not None
                and self.password_hash is not None and self.totp_secret is not None)


class AdminSession(Base):
    """A console sign-in. The cookie carries a random id; the row keeps its digest.

    It ends at logout, after ``admin_session_idle`` seconds without a request,
    at ``expires_at`` (``admin_session_max`` after sign-in), or when the admin
    is disabled or re-enrolled.
    """

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid_digest: Mapped[str] = mapped_column(String(64), unique=True)
    admin_id: Mapped[str] = mapped_column(ForeignKey("admins.id"), index=True)
    created_at: Mapped[created_at]
    last_seen_at: Mapped[dt.datetime]
    # The last password or TOTP check (sign-in counts); destructive actions
    # need it within admin_reauth_window.
    reauth_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]

    admin: Mapped[Admin] = relationship(lazy="joined")


class AdminFormToken(Base):
    """A rendered console form: its token works once, in the session it was made for."""

    __tablename__ = "admin_form_tokens"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("admin_sessions.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[created_at]
    used_at: Mapped[dt.datetime | None]


class AdminPasskey(PasskeyColumns, Base):
    """An admin's WebAuthn credential (idp.admin.auth): signs in alone, replacing the
    password and TOTP code (user verification is required: two factors by itself).
    The columns are those of a resident's passkey (idp.security.passkey_columns)."""

    __tablename__ = "admin_passkeys"

    admin_id: Mapped[str] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"),
                                          index=True)
