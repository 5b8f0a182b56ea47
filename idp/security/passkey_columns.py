"""The stored half of a WebAuthn credential, shared by residents' and admins' passkeys.

A declarative mixin: each model adds its own owner column (``resident_id``,
``admin_id``). The public key as COSE bytes; ``sign_count`` the authenticator's last
counter (a counter that does not grow betrays a cloned key); ``multi_device`` the
backup-eligible flag (BE), fixed for the credential's life, and ``backed_up`` its
backup state (BS) at the last use (idp.security.passkeys checks both).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import created_at


class PasskeyColumns:
    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(default=0)
    aaguid: Mapped[str] = mapped_column(String(36))
    transports: Mapped[list[str]]
    multi_device: Mapped[bool]
    backed_up: Mapped[bool]
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[created_at]
    last_used_at: Mapped[dt.datetime | None]
