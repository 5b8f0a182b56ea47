"""The floor of access: browser sessions, authorization codes, tokens, device codes
and pairwise subjects.

Every bearer value (session id, code, access token, refresh token) is stored
only as its SHA-256 digest (``idp.secrets``).

This package sits below the domains (accounts, clients, …), so it knows a
resident or a client only by id: relationships name their class as a string
(resolved by SQLAlchemy's registry once every model is imported, ``idp.models``)
and attributes of a client (``is_active``, ``company_id``,
``backchannel_logout_uri``, ``event_receiver_uri``) are read duck-typed.

The methods named ``get_*``/``check_*``/``is_*`` implement Authlib's model
interfaces (``TokenMixin``, ``AuthorizationCodeMixin``,
``DeviceCredentialMixin``) without inheriting them: Authlib duck-types its
models, and only ``idp.oauth`` imports Authlib.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import query_expression
from sqlalchemy.orm import relationship

from idp.db import Base
from idp.db import created_at
from idp.db import utcnow
from idp.security import passkeys


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
    # How the resident signed in (RFC 8176): ["pwd"], ["pwd", "otp", "mfa"], or with a
    # passkey ["hwk" or "swk", "user", "mfa"] (idp.security.passkeys.amr).
    amr: Mapped[list[str]] = mapped_column(default=lambda: ["pwd"],
                                           server_default=text("'[\"pwd\"]'"))


class PairwiseSubject(Base):
    """The `sub` a company sees for a resident: random, stored, never derived."""

    __tablename__ = "pairwise_subjects"

    resident_id: Mapped[str] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), primary_key=True)
    sub: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[created_at]


class AuthorizationCode(Base):
    """An authorization code (RFC 6749 §4.1); Authlib's ``AuthorizationCodeMixin`` interface."""

    __tablename__ = "authorization_codes"
    # Every authorization request checks that its nonce was never used by the
    # client before (OpenIDCode.exists_nonce); without this index that check
    # reads every code the client was ever issued.
    __table_args__ = (Index("ix_authorization_codes_client_id_nonce", "client_id", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[dt.datetime]
    session_id: Mapped[int | None]
    # The consented part of the OIDC `claims` request parameter (only its
    # verified_claims members, per target: "id_token", "userinfo"), and
    # "auth_time": true when the ID token must carry auth_time (claims.AUTH_TIME).
    claims: Mapped[dict[str, Any] | None]
    created_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime]
    # Set once, atomically, by the redemption that wins; a second redemption
    # finds it set and revokes everything issued from the code.
    used_at: Mapped[dt.datetime | None]
    # Not columns: read in the same query as the code when it is redeemed
    # (idp.oauth.grants): the items of the resident's consent in force to the client,
    # and the resident's `sub` at the client's company (None before its first release).
    consent_scopes: Mapped[list[str] | None] = query_expression()
    pairwise_sub: Mapped[str | None] = query_expression()

    resident = relationship("Resident")
    # session_id is recorded without a foreign key; read-only, for amr.
    browser_session: Mapped[BrowserSession | None] = relationship(
        primaryjoin="foreign(AuthorizationCode.session_id) == BrowserSession.id",
        viewonly=True)

    # ---- Authlib's AuthorizationCodeMixin interface --------------------
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time.timestamp())

    def get_acr(self) -> str | None:
        """``phr``/``phrh`` after a passkey sign-in (idp.security.passkeys), else none."""
        if self.browser_session is not None:
            return passkeys.acr_of(self.browser_session.amr)
        return None

    def get_amr(self) -> list[str]:
        """How the resident signed in (RFC 8176): ["pwd"], with TOTP ["pwd", "otp", "mfa"],
        with a passkey ["hwk" or "swk", "user", "mfa"]."""
        if self.browser_session is not None and self.browser_session.amr:
            return list(self.browser_session.amr)
        return ["pwd"]

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires_at <= (now or utcnow())


class Token(Base):
    """One issuance: an access token and, optionally, its refresh token (Authlib's
    ``TokenMixin`` interface).

    ``family_id`` ties together every token descended from one grant (a code
    or a first client-credentials call); refresh rotation keeps the family,
    and reuse of a rotated refresh token revokes the whole family.
    """

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    resident_id: Mapped[str | None] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str | None] = mapped_column(String(64))
    grant_type: Mapped[str] = mapped_column(String(80))
    scope: Mapped[str] = mapped_column(Text, default="")
    access_token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(43), index=True)
    code_id: Mapped[int | None] = mapped_column(ForeignKey("authorization_codes.id"), index=True)
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    access_expires_at: Mapped[dt.datetime]
    refresh_expires_at: Mapped[dt.datetime | None]
    refresh_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    # The code's consented `claims` request, carried over on rotation (UserInfo).
    claims: Mapped[dict[str, Any] | None]
    # Digest of the claim names last released through UserInfo with this
    # token: the release is audited when it changes, not on every call.
    released_claims: Mapped[str | None] = mapped_column(String(64))
    # Not a column: the items of the resident's consent in force, read in the same
    # query as the token (idp.oauth.tokens); what the token may still release is its
    # scope within them (idp.consent.service.scopes_in_force_for).
    consent_scopes: Mapped[list[str] | None] = query_expression()

    client = relationship("Client", lazy="joined")
    resident = relationship("Resident")

    # ---- Authlib's TokenMixin interface --------------------------------
    def check_client(self, client) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((self.access_expires_at - self.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.access_expires_at <= utcnow()

    def is_revoked(self) -> bool:
        # A revoked client or a suspended company cuts its tokens off at once.
        return self.revoked_at is not None or not self.client.is_active

    def get_user(self):
        return self.resident

    def get_client(self):
        return self.client

    # ---- refresh side --------------------------------------------------
    def refresh_usable(self, now: dt.datetime) -> bool:
        return (
            self.refresh_token_digest is not None
            and self.revoked_at is None
            and self.refresh_used_at is None
            and self.refresh_expires_at is not None
            and self.refresh_expires_at > now
            and self.client.is_active
        )


class DeviceCode(Base):
    """An RFC 8628 device authorization: what a kiosk polls with (Authlib's
    ``DeviceCredentialMixin`` interface).

    The device code is stored as a SHA-256 digest; the user code (34 bits, the
    one a person types) as an HMAC under the server secret, so a copy of the
    table cannot be used to look pending codes up offline.
    """

    __tablename__ = "device_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime]
    interval: Mapped[int]
    last_polled_at: Mapped[dt.datetime | None]
    # pending → approved | denied; an approved code is consumed once.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    resident_id: Mapped[str | None] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE")
    )
    decided_at: Mapped[dt.datetime | None]
    consumed_at: Mapped[dt.datetime | None]
    # How the approving resident signed in on their phone (RFC 8176, as
    # BrowserSession.amr), copied at approval: the device flow's ID token says it
    # as the code flow's does. None on codes approved before the column existed.
    amr: Mapped[list[str] | None]

    client = relationship("Client", lazy="joined")
    resident = relationship("Resident")

    # ---- Authlib's DeviceCredentialMixin interface ---------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> None:
        return None  # only its HMAC is stored

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires_at <= (now or utcnow())

    # ---- the ID token's amr/acr, as AuthorizationCode's ------------------
    def get_amr(self) -> list[str] | None:
        """How the approving resident signed in, or None when that was not recorded
        (a code approved by a node of the previous version): no claim then, rather
        than a guess."""
        return list(self.amr) if self.amr else None

    def get_acr(self) -> str | None:
        """``phr``/``phrh`` after a passkey sign-in (idp.security.passkeys), else none."""
        return passkeys.acr_of(self.amr)


class RevocationEpoch(Base):
    """One row whose ``value`` changes with every cut-off of state that nodes keep in
    process (clients, companies, signing keys): see ``idp.access.epoch``.

    The value is drawn at random by each bump, not counted up: a cache tagged with a
    value seen inside a transaction that then rolled back can never match a later,
    committed value by accident (a counter would reach the same number again)."""

    __tablename__ = "revocation_epoch"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)
