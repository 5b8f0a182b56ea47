"""Admin sign-in: password **and** TOTP, or a passkey; short sessions, re-authentication,
one-time forms.

A passkey (``passkey_sign_in``) replaces both the password and the code: it is two
factors by itself (user verification required), bound to the console's origin. With
``admin_passkey_required`` the password-and-code sign-in is refused, as
``passkey_required``, to an admin who has a passkey; one who has none yet signs in
with password and code and can then only enrol one (``idp.admin.views``).

Sign-in checks, in order (the first that fails decides; all are audited as
``admin:login:failure`` with the reason, and the page says only that the
sign-in failed: one status and one message for every reason, so a right
password without its code cannot be told from a wrong one):

1. ``locked``          5 failures for the account in the last 15 minutes
                       (``LOCKOUT``, idp.security.lockout);
2. ``unknown_admin``   no such email (one argon2 verification is spent anyway);
3. ``not_enrolled`` / ``disabled``;
4. ``bad_password``;
5. ``passkey_required`` ``admin_passkey_required`` and the admin has a passkey;
6. ``missing_code``    no TOTP code was given — the second factor is never optional;
7. ``bad_code``        not the code of the current 30-second step (± one step);
8. ``replayed_code``   the code's step was already used (sign-in, re-authentication
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
from idp.accounts import passkeys
from idp.accounts import passwords
from idp.accounts.service import normalise_email
from idp.admin.models import Admin
from idp.admin.models import AdminFormToken
from idp.admin.models import AdminPasskey
from idp.admin.models import AdminSession
from idp.audit.query import count_since
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db
from idp.security import csrf
from idp.security import passkeys as webauthn
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


def _failure(admin: Admin, **audit):
    """A sign-in failure of this admin: audited (``admin:login:failure``), then raised."""
    def fail(reason: str) -> AuthError:
        record(AuditTag.ADMIN_LOGIN_FAILURE, admin_id=admin.id, reason=reason, **audit)
        return AuthError(reason)
    return fail


def _may_sign_in(admin: Admin, fail) -> None:
    """The admin's standing, whatever the method: not locked out, not disabled, enrolled."""
    if _locked(admin.id):
        raise fail("locked")
    if admin.disabled_at is not None:
        raise fail("disabled")
    if not admin.can_sign_in:
        raise fail("not_enrolled")


def sign_in(email: str, password: str, code: str) -> Admin:
    """The admin for these credentials, or AuthError. The caller commits either way."""
    email = normalise_email((email or "")[:MAX_FIELD])
    password = (password or "")[:MAX_FIELD]
    admin = db.session.scalar(select(Admin).where(Admin.email == email)) if email else None
    if admin is None:
        passwords.burn_time(password or "x")
        record(AuditTag.ADMIN_LOGIN_FAILURE, reason="unknown_admin")
        raise AuthError("unknown_admin")

    fail = _failure(admin)
    _may_sign_in(admin, fail)
    if not password or not passwords.verify(admin.password_hash, password):
        raise fail("bad_password")
    if config.settings().admin_passkey_required and has_passkey(admin.id):
        raise fail("passkey_required")
    reason = claim_code(admin, (code or "")[:32])
    if reason is not None:
        raise fail(reason)
    if passwords.needs_rehash(admin.password_hash):
        admin.password_hash = passwords.hash_password(password)
    return admin


# ---- passkeys -----------------------------------------------------------------------

ADMIN_SIGN_IN = "admin_sign_in"
ADMIN_REGISTER = "admin_register"


def passkeys_of(admin_id: str) -> list[AdminPasskey]:
    return list(db.session.scalars(
        select(AdminPasskey).where(AdminPasskey.admin_id == admin_id).order_by(AdminPasskey.id)))


def has_passkey(admin_id: str) -> bool:
    return db.session.scalar(select(AdminPasskey.id).where(
        AdminPasskey.admin_id == admin_id).limit(1)) is not None


def must_enrol_passkey(admin: Admin) -> bool:
    """``admin_passkey_required`` and this admin has no passkey yet."""
    return config.settings().admin_passkey_required and not has_passkey(admin.id)


def begin_passkey_enrolment(admin: Admin) -> tuple[str, str]:
    """(challenge id, creation options JSON); the view checks the session is ``fresh``."""
    challenge_id, challenge = passkeys.new_challenge(ADMIN_REGISTER, admin.id)
    options = webauthn.registration_options(
        config.settings().issuer, challenge, admin.id.encode(), admin.email, admin.email,
        passkeys.credential_ids(passkeys_of(admin.id)))
    return challenge_id, options


def finish_passkey_enrolment(admin: Admin, challenge_id, response, name: str | None
                             ) -> AdminPasskey:
    challenge = passkeys.take_challenge(challenge_id, ADMIN_REGISTER, admin.id)
    existing = passkeys_of(admin.id)
    if len(existing) >= passkeys.MAX_PASSKEYS:
        raise passkeys.PasskeyError("too_many")
    made = webauthn.verify_registration(config.settings().issuer, response, challenge)
    if db.session.scalar(select(AdminPasskey.id).where(
            AdminPasskey.credential_id == made.credential_id)) is not None:
        raise passkeys.PasskeyError("duplicate")
    row = AdminPasskey(admin_id=admin.id, credential_id=made.credential_id,
                       public_key=made.public_key, sign_count=made.sign_count,
                       aaguid=made.aaguid, transports=made.transports,
                       multi_device=made.multi_device, backed_up=made.backed_up,
                       name=passkeys.clean_name(name)
                       or passkeys.default_name(len(existing) + 1))
    db.session.add(row)
    db.session.flush()
    record(AuditTag.ADMIN_PASSKEY_ADD, admin_id=admin.id, actor="admin", passkey=row.id)
    return row


def begin_passkey_sign_in() -> tuple[str, str]:
    challenge_id, challenge = passkeys.new_challenge(ADMIN_SIGN_IN)
    return challenge_id, webauthn.authentication_options(config.settings().issuer, challenge)


def passkey_sign_in(challenge_id, response) -> Admin:
    """The admin whose passkey signed the challenge, or AuthError (audited as
    ``admin:login:failure`` with ``method=passkey``). The caller commits either way."""
    try:
        challenge = passkeys.take_challenge(challenge_id, ADMIN_SIGN_IN)
        row = db.session.scalar(select(AdminPasskey).where(
            AdminPasskey.credential_id == webauthn.credential_id_of(response)))
    except passkeys.PasskeyError as error:
        record(AuditTag.ADMIN_LOGIN_FAILURE, reason=error.reason, method="passkey")
        raise AuthError(error.reason) from error
    if row is None:
        record(AuditTag.ADMIN_LOGIN_FAILURE, reason="unknown_passkey", method="passkey")
        raise AuthError("unknown_passkey")
    admin = db.session.get(Admin, row.admin_id)

    fail = _failure(admin, method="passkey")
    _may_sign_in(admin, fail)
    try:
        passkeys.check_owner(admin.id, response)
        passkeys.check_assertion(row, response, challenge)
    except passkeys.PasskeyError as error:
        raise fail(error.reason) from error
    return admin


def start_session(admin: Admin, method: str = "password") -> str:
    """A new console session; returns the cookie value (only its digest is stored).
    ``method``: ``password`` (with its TOTP code), ``passkey``, or ``enrolment`` (the
    first code, just proven at enrolment)."""
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
    record(AuditTag.ADMIN_LOGIN_SUCCESS, admin_id=admin.id, actor="admin", method=method)
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
