"""Password reset by email link, and cutting off everything a resident had signed in.

``request_reset`` answers the same way whether or not the address is
registered, and always sends exactly one mail to it: the reset link, or a
notice that no consortium ID uses the address. The link is single use and
expires after ``password_reset_ttl``; it also carries a fingerprint of the
password hash it was issued for, so it dies as soon as the password changes
by any route (another reset link, the account page).

A reset ends every browser session of the resident, revokes every access and
refresh token, and expires unredeemed authorization codes: whoever knew the
old password is out everywhere at once, and every service with a back-channel
logout URI is told. A second factor (TOTP) stays on: the
reset does not sign anyone in.
"""

from __future__ import annotations

from flask import url_for

from idp import secrets
from idp.access import service as access
from idp.accounts import links
from idp.accounts import passwords
from idp.accounts import service as accounts
from idp.accounts.models import Resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.extensions import db
from idp.mail.service import Message
from idp.mail.service import compose


def fingerprint(password_hash: str) -> str:
    return secrets.digest(password_hash)[:16]


def request_reset(email: str, locale: str | None) -> Message:
    resident = accounts.find_by_email(email)
    if resident is None:
        return compose("reset_unknown", email, locale,
                       register_url=url_for("account.register", _external=True))
    token = links.make(links.RESET_PASSWORD, r=resident.id,
                       p=fingerprint(resident.password_hash))
    record(AuditTag.PASSWORD_RESET_REQUEST, resident_id=resident.id)
    return compose("reset", resident.email, resident.locale or locale,
                   link=url_for("account.reset_confirm", token=token, _external=True),
                   minutes=links.ttl(links.RESET_PASSWORD) // 60)


def read_reset(token: str | None) -> tuple[Resident, dict]:
    """The resident a valid reset link is for; raises links.LinkError."""
    payload = links.read(links.RESET_PASSWORD, token)
    resident = db.session.get(Resident, payload.get("r")) if isinstance(
        payload.get("r"), str) else None
    if resident is None:
        raise links.LinkError("invalid")
    if payload.get("p") != fingerprint(resident.password_hash):
        raise links.LinkError("used")  # the password changed since: the link is spent
    return resident, payload


def reset_password(resident: Resident, payload: dict, new_password: str) -> Message:
    accounts.validate_password(new_password, resident.email)
    links.consume(links.RESET_PASSWORD, payload)
    resident.password_hash = passwords.hash_password(new_password)
    cut = revoke_everything(resident.id)
    record(AuditTag.PASSWORD_RESET, resident_id=resident.id, **cut)
    return compose("password_changed", resident.email, resident.locale,
                   reset_url=url_for("account.reset_request", _external=True))


def revoke_everything(resident_id: str, keep_session: int | None = None,
                      reason: str = "password_reset") -> dict[str, int]:
    """End the resident's sessions (but ``keep_session``), revoke all their tokens
    and expire their unredeemed codes, including device codes a kiosk has not
    collected yet; every client with a back-channel logout URI is told
    (``idp.access.service``). Returns counts for the audit record."""
    sessions = access.end_sessions(resident_id, reason, keep_session=keep_session)
    cut = access.revoke_grants(resident=resident_id, reason=reason)
    return {"sessions_ended": sessions, **cut}
