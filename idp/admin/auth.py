"""Admin sign-in: password **and** TOTP, short sessions, re-authentication, one-time forms.

Sign-in checks, in order (the first that fails decides; all are audited as
``admin:login:failure`` with the reason, and the page says only that the
sign-in failed: one status and one message for every reason, so a right
password without its code cannot be told from a wrong one):

1. ``locked``          5 failures for the account in the last 15 minutes
                       (``LOCKOUT``, idp.security.lockout);
2. ``unknown_admin``   no such email (one argon2 verification is spent anyway);
3. ``not_enrolled`` / ``disabled``;
4. ``bad_password``;
5. ``missing_code``    no TOTP code was given — the second factor is never optional;
6. ``bad_code``        not the code of the current 30-second step (± one step);
7. ``replayed_code``   the code's step was already used (sign-in, re-authentication
                       or enrolment): a code works once, even inside its window
                       (idp.security.totp, the same codes as residents').

A session lives ``admin_session_idle`` seconds after the last request, and
never longer than ``admin_session_max`` after sign-in. Destructive actions
also need a password or TOTP check within ``admin_reauth_window`` seconds
(``fresh``). Console forms carry, besides the CSRF token, a token that works
once, in the session it was rendered for (``consume_form_token``,
idp.security.csrf): a replayed or forged post changes nothing.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import select

from idp import config
from idp import secrets
from idp.accounts import passwords
from idp.accounts.service import normalise_email
from idp.admin.models import Admin
from idp.admin.models import AdminFormToken
from idp.admin.models import AdminSession
from idp.audit.query import count_since
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db
from idp.security import csrf
from idp.security import totp
from idp.security.lockout import Lockout

MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
LOCKOUT = Lockout(MAX_FAILURES, FAILURE_WINDOW)
MAX_FIELD = 1024


class AuthError(ValueError):
    """A sign-in or re-authentication was refused; ``reason`` says why (audited)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _locked(admin_id: str) -> bool:
    return LOCKOUT.locked(lambda since: count_since(
        [AuditTag.ADMIN_LOGIN_FAILURE, AuditTag.ADMIN_REAUTH_FAILURE], since, admin_id=admin_id))


def claim_code(admin: Admin, code: str) -> str | None:
    """Check a TOTP code and use up its time step; None if accepted, else the reason."""
    if not (code or "").strip():
        return "missing_code"
    problem = totp.use_code(admin, Admin.totp_last_step, admin.totp_secret, code)
    return "replayed_code" if problem == "replayed" else problem


def sign_in(email: str, password: str, code: str) -> Admin:
    """The admin for these credentials, or AuthError. The caller commits either way."""
    email = normalise_email((email or "")[:MAX_FIELD])
    password = (password or "")[:MAX_FIELD]
    admin = db.session.scalar(select(Admin).where(Admin.email == email)) if email else None
    if admin is None:
        passwords.burn_time(password or "x")
        record(AuditTag.ADMIN_LOGIN_FAILURE, reason="unknown_admin")
        raise AuthError("unknown_admin")

    def fail(reason: str) -> AuthError:
        record(AuditTag.ADMIN_LOGIN_FAILURE, admin_id=admin.id, reason=reason)
        return AuthError(reason)

    if _locked(admin.id):
        raise fail("locked")
    if admin.disabled_at is not None:
        raise fail("disabled")
    if not admin.can_sign_in:
        raise fail("not_enrolled")
    if not password or not passwords.verify(admin.password_hash, password):
        raise fail("bad_password")
    reason = claim_code(admin, (code or "")[:32])
    if reason is not None:
        raise fail(reason)
    if passwords.needs_rehash(admin.password_hash):
        admin.password_hash = passwords.hash_password(password)
    return admin


def start_session(admin: Admin) -> str:
    """A new console session; returns the cookie value (only its digest is stored)."""
    settings = config.settings()
    now = utcnow()
    sid = secrets.token(32)
    db.session.execute(delete(AdminSession).where(
        AdminSession.admin_id == admin.id,
        or_(AdminSession.ended_at.is_not(None), AdminSession.expires_at <= now)))
    row = AdminSession(sid_digest=secrets.digest(sid), admin_id=admin.id, last_seen_at=now,
                       reauth_at=now,
                       expires_at=now + dt.timedelta(seconds=settings.admin_session_max))
    db.session.add(row)
    admin.last_login_at = now
    db.session.flush()
    record(AuditTag.ADMIN_LOGIN_SUCCESS, admin_id=admin.id, actor="admin")
    return sid


def load_session(sid: str | None) -> AdminSession | None:
    """The live session for this cookie value; None when ended, idle or too old."""
    if not isinstance(sid, str) or not 20 <= len(sid) <= 100:
        return None
    row = db.session.scalar(
        select(AdminSession).where(AdminSession.sid_digest == secrets.digest(sid)))
    if row is None or row.ended_at is not None:
        return None
    now = utcnow()
    idle = dt.timedelta(seconds=config.settings().admin_session_idle)
    if row.expires_at <= now or row.last_seen_at + idle <= now or not row.admin.can_sign_in:
        return None
    return row


def touch(row: AdminSession) -> None:
    row.last_seen_at = utcnow()


def end_session(row: AdminSession) -> None:
    if row.ended_at is None:
        row.ended_at = utcnow()
        record(AuditTag.ADMIN_LOGOUT, admin_id=row.admin_id, actor="admin")


def fresh(row: AdminSession) -> bool:
    """Whether the admin proved who they are recently enough for a destructive action."""
    window = dt.timedelta(seconds=config.settings().admin_reauth_window)
    return utcnow() - row.reauth_at <= window


def reauthenticate(row: AdminSession, password: str, code: str) -> None:
    """Renew ``reauth_at`` with the password or a (new) TOTP code; AuthError otherwise."""
    admin = row.admin
    password = (password or "")[:MAX_FIELD]
    code = (code or "")[:32]

    def fail(reason: str) -> AuthError:
        record(AuditTag.ADMIN_REAUTH_FAILURE, admin_id=admin.id, actor="admin", reason=reason)
        return AuthError(reason)

    if _locked(admin.id):
        raise fail("locked")
    if code.strip():
        reason = claim_code(admin, code)
        if reason is not None:
            raise fail(reason)
        method = "otp"
    elif password:
        if not passwords.verify(admin.password_hash, password):
            raise fail("bad_password")
        method = "pwd"
    else:
        raise fail("missing_credentials")
    row.reauth_at = utcnow()
    record(AuditTag.ADMIN_REAUTH, admin_id=admin.id, actor="admin", method=method)


# ---- one-time form tokens (idp.security.csrf: single-use forms) -------------------

def new_form_token(row: AdminSession) -> str:
    return csrf.issue(AdminFormToken.session_id, row.id)


def consume_form_token(row: AdminSession, value: str | None) -> str | None:
    """Use up a form token; None if it was good, else ``missing``, ``replayed`` or ``invalid``."""
    return csrf.consume(AdminFormToken.session_id, row.id, value)
