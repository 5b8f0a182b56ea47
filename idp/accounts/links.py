"""Signed, expiring, single-use links sent by mail.

A link carries an itsdangerous ``URLSafeTimedSerializer`` token: a payload
signed with ``secret_key`` under a per-purpose salt (a registration link can
never pass as a reset link), with its signing time, so it expires after the
purpose's lifetime. Each payload has a random nonce ``n``; using a link
stores the digest of purpose and nonce in ``used_links``, so a second use is
refused even within the lifetime. Reset links also carry a fingerprint of the
password hash, so they die as soon as the password changes by any route.

Reading a link (``read``) does not use it up: the page behind a link only
shows a form, and the form's POST calls ``consume``. Mail scanners that
follow links therefore cannot burn them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from idp import config
from idp import secrets
from idp.accounts.models import UsedLink
from idp.db import utcnow
from idp.extensions import db

REGISTER = "register"
VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose name, not a secret
PURPOSES = (REGISTER, VERIFY_EMAIL, RESET_PASSWORD)
MAX_TOKEN = 2048


class LinkError(ValueError):
    """The link cannot be used; ``reason`` is ``invalid``, ``expired`` or ``used``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def ttl(purpose: str) -> int:
    settings = config.settings()
    return settings.password_reset_ttl if purpose == RESET_PASSWORD else settings.email_link_ttl


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose}")
    return URLSafeTimedSerializer(config.settings().secret_key, salt=f"machi-id/link/{purpose}")


def make(purpose: str, **claims: Any) -> str:
    """A signed token for ``purpose`` carrying ``claims`` and a fresh nonce."""
    return _serializer(purpose).dumps({**claims, "n": secrets.token(16)})


def _digest(purpose: str, nonce: str) -> str:
    return secrets.digest(f"{purpose}:{nonce}")


def read(purpose: str, token: str | None) -> dict[str, Any]:
    """The payload of a valid, unexpired, unused link. Raises LinkError."""
    if not token or len(token) > MAX_TOKEN:
        raise LinkError("invalid")
    try:
        payload = _serializer(purpose).loads(token, max_age=ttl(purpose))
    except SignatureExpired as exc:
        raise LinkError("expired") from exc
    except BadSignature as exc:
        raise LinkError("invalid") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
        raise LinkError("invalid")
    if db.session.get(UsedLink, _digest(purpose, payload["n"])) is not None:
        raise LinkError("used")
    return payload


def consume(purpose: str, payload: dict[str, Any]) -> None:
    """Record the link as used; raises LinkError("used") if another request used it first.

    The primary key settles the race: the loser's insert fails in its savepoint.
    """
    now = utcnow()
    db.session.execute(delete(UsedLink).where(UsedLink.expires_at <= now))
    try:
        with db.session.begin_nested():
            db.session.add(UsedLink(digest=_digest(purpose, payload["n"]), purpose=purpose,
                                    used_at=now,
                                    expires_at=now + dt.timedelta(seconds=ttl(purpose))))
    except IntegrityError as exc:
        raise LinkError("used") from exc

