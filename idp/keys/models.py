"""SigningKey: one JWK, its algorithm, and when it signs and verifies."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base
from idp.db import created_at


class KeyState(enum.StrEnum):
    PUBLISHED = "published"  # in JWKS, not yet signing (RPs' caches catch up)
    ACTIVE = "active"        # signs new ID tokens
    RETIRED = "retired"      # no longer signs; in JWKS until its tokens expire
    EXPIRED = "expired"      # out of JWKS


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    # Fernet-encrypted private JWK (idp.keys.crypto); never stored in clear.
    private_jwk_sealed: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]]
    created_at: Mapped[created_at]
    activates_at: Mapped[dt.datetime]
    retired_at: Mapped[dt.datetime | None]
    verify_until: Mapped[dt.datetime | None]

    def state(self, now: dt.datetime) -> KeyState:
        if self.verify_until is not None and self.verify_until <= now:
            return KeyState.EXPIRED
        if self.retired_at is not None and self.retired_at <= now:
            return KeyState.RETIRED
        if self.activates_at > now:
            return KeyState.PUBLISHED
        return KeyState.ACTIVE
