"""Admin accounts: invitation by enrolment link, enrolment, reset, disabling.

``idp admins create --email E`` (or an admin in the console) creates an
account with no password and a fresh TOTP secret, and returns a one-time
enrolment link (``/admin/enrol?token=…``, valid ``admin_enrolment_ttl``). The
link's page shows the secret as a QR code; the new admin chooses a password
(at least 12 characters) and proves their authenticator app with a first
code. That proof signs them in at once (a new console session); from then on
they sign in with password **and** code (or a passkey).

A lost phone or password is handled by a reset: the account goes back to the
invited state with a new secret and a new link, and every session ends.
A disabled account cannot sign in and its sessions end at once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update

from idp import config
from idp import secrets
from idp.accounts import passwords
from idp.accounts.service import normalise_email
from idp.accounts.service import valid_email
from idp.admin.models import Admin
from idp.admin.models import AdminPasskey
from idp.admin.models import AdminSession
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db
from idp.security import totp

MIN_PASSWORD = 12
MAX_PASSWORD = 1024


class AdminError(ValueError):
    """An admin account operation was refused; the message says why (in English, for the
    CLI and the audit trail). ``reason`` is a short code the console turns into a message
    in the page's language (``idp.admin.views.session``)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


def enrolment_url(token: str) -> str:
    # A query string, not a path: access logs record paths only (idp serve).
    return config.settings().endpoint(f"/admin/enrol?token={token}")


def _new_enrolment(admin: Admin) -> str:
    token = secrets.token(32)
    admin.enrolment_digest = secrets.digest(token)
    admin.enrolment_expires_at = (utcnow()
                                  + dt.timedelta(seconds=config.settings().admin_enrolment_ttl))
    admin.totp_secret = totp.new_secret()
    admin.totp_last_step = None
    admin.password_hash = None
    admin.enrolled_at = None
    return token


def get_admin(key: str) -> Admin:
    """An admin by id (``ad_…``) or email address."""
    admin = None
    if isinstance(key, str) and 0 < len(key) <= 254:
        if "@" in key:
            admin = db.session.scalar(select(Admin).where(Admin.email == normalise_email(key)))
        else:
            admin = db.session.get(Admin, key)
    if admin is None:
        raise AdminError(f"no admin {key}")
    return admin


def list_admins() -> list[Admin]:
    return list(db.session.scalars(select(Admin).order_by(Admin.created_at, Admin.id)))


def create_admin(email: str, actor: str | None = None) -> tuple[Admin, str]:
    """A new admin account in the invited state; returns it and the enrolment token."""
    email = normalise_email(email or "")
    if not valid_email(email):
        raise AdminError("email is not a valid address")
    if db.session.scalar(select(Admin.id).where(Admin.email == email)) is not None:
        raise AdminError(f"an admin with the email {email} already exists")
    admin = Admin(email=email, created_by=actor)
    token = _new_enrolment(admin)
    db.session.add(admin)
    db.session.flush()
    record(AuditTag.ADMIN_CREATE, actor=actor, target_admin=admin.id,
           expires_at=admin.enrolment_expires_at.isoformat())
    return admin, token


def reset_admin(key: str, actor: str | None = None) -> tuple[Admin, str]:
    """Back to the invited state: new secret, new link, no password, no passkeys, no
    sessions (a lost or stolen passkey stops working with the rest)."""
    admin = get_admin(key)
    if admin.disabled_at is not None:
        raise AdminError(f"admin {admin.id} is disabled")
    token = _new_enrolment(admin)
    ended = end_sessions(admin.id)
    passkeys_removed = db.session.execute(
        delete(AdminPasskey).where(AdminPasskey.admin_id == admin.id)).rowcount
    record(AuditTag.ADMIN_RESET, actor=actor, target_admin=admin.id, sessions_ended=ended,
           passkeys_removed=passkeys_removed,
           expires_at=admin.enrolment_expires_at.isoformat())
    return admin, token


def disable_admin(key: str, actor: str | None = None, acting_admin_id: str | None = None) -> Admin:
    """No more sign-ins; every session ends now. Admins cannot disable themselves."""
    admin = get_admin(key)
    if acting_admin_id is not None and admin.id == acting_admin_id:
        raise AdminError("you cannot disable your own account")
    if admin.disabled_at is not None:
        raise AdminError(f"admin {admin.id} is already disabled")
    admin.disabled_at = utcnow()
    admin.enrolment_digest = None
    admin.enrolment_expires_at = None
    ended = end_sessions(admin.id)
    record(AuditTag.ADMIN_DISABLE, actor=actor, target_admin=admin.id, sessions_ended=ended)
    return admin


def end_sessions(admin_id: str) -> int:
    return db.session.execute(
        update(AdminSession)
        .where(AdminSession.admin_id == admin_id, AdminSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    ).rowcount


def by_enrolment_token(token: str | None) -> Admin | None:
    """The invited admin a link names, if it is still valid."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    admin = db.session.scalar(select(Admin).where(Admin.enrolment_digest == secrets.digest(token)))
    if admin is None or admin.disabled_at is not None or admin.enrolment_expires_at is None \
            or admin.enrolment_expires_at <= utcnow():
        return None
    return admin


def validate_password(password: str, email: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AdminError(f"the password must be at least {MIN_PASSWORD} characters",
                         "password_short")
    if len(password) > MAX_PASSWORD:
        raise AdminError(f"the password must be at most {MAX_PASSWORD} characters",
                         "password_long")
    if email.split("@")[0].lower() in password.lower():
        raise AdminError("the password must not contain the email address",
                         "password_has_email")


def enrol(token: str, password: str, code: str) -> Admin:
    """Finish enrolment: set the password, confirm the authenticator with a code.

    The link works once: its digest is cleared here. The code's time step is used up
    (``totp_last_step``), so the same code cannot sign in afterwards: the console signs
    the admin in at once instead (``idp.admin.views.session.enrol``).
    """
    admin = by_enrolment_token(token)
    if admin is None:
        raise AdminError("this enrolment link is not valid or has expired", "link_invalid")
    validate_password(password or "", admin.email)
    step = totp.matching_step(admin.totp_secret, code or "")
    if step is None:
        raise AdminError("the code is not correct", "bad_code")
    admin.password_hash = passwords.hash_password(password)
    admin.totp_last_step = step
    admin.enrolled_at = utcnow()
    admin.enrolment_digest = None
    admin.enrolment_expires_at = None
    record(AuditTag.ADMIN_ENROL, admin_id=admin.id, actor="admin")
    return admin
