"""Optional second factor for residents: TOTP (RFC 6238) and recovery codes.

- The codes, their window and their single use (a step is claimed once, in
  ``Resident.totp_last_counter``) are ``idp.security.totp``, the same as for
  admins.
- Ten recovery codes of 80 random bits each are issued when TOTP is turned
  on (and on request); each works once. Only their SHA-256 digests are
  stored: they are high-entropy values we generate (STYLE rule 6).
- Wrong codes at sign-in are counted server-side (audit rows), so a replayed
  cookie cannot reset the count: after ``MAX_FAILURES`` in ``FAILURE_WINDOW``
  the resident must wait (``LOCKOUT``, idp.security.lockout).
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from idp import secrets
from idp.accounts import service as accounts
from idp.accounts.models import RecoveryCode
from idp.accounts.models import Resident
from idp.audit.query import count_since
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db
from idp.security import totp as otp
from idp.security.lockout import Lockout

ISSUER_NAME = "Machi ID"
RECOVERY_CODES = 10
RECOVERY_CODE_LENGTH = 16  # Crockford base32: 80 bits
MAX_FAILURES = 10
FAILURE_WINDOW = dt.timedelta(minutes=15)
LOCKOUT = Lockout(MAX_FAILURES, FAILURE_WINDOW)


class TotpError(ValueError):
    """A second-factor operation was refused; ``reason`` names why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def provisioning_uri(secret: str, resident: Resident) -> str:
    return otp.provisioning_uri(secret, resident.email, ISSUER_NAME)


def crockford(value: str) -> str:
    """A typed recovery code in canonical form: no separators, upper case, and the
    letters Crockford base32 reads as digits (O→0, I/L→1)."""
    value = re.sub(r"[\s-]", "", value or "").upper()
    return value.translate(str.maketrans("OIL", "011"))


# ---- enrolment --------------------------------------------------------------

def enable(resident: Resident, secret: str, code: str, password: str) -> list[str]:
    """Turn TOTP on with a secret the resident's app has proven it holds.

    Returns the recovery codes, to be shown once.
    """
    if resident.totp_enabled:
        raise TotpError("already_enabled")
    if not accounts.check_password(resident, password):
        raise TotpError("bad_password")
    step = otp.matching_step(secret, code)
    if step is None:
        raise TotpError("bad_code")
    resident.totp_secret = secret
    resident.totp_enabled_at = utcnow()
    resident.totp_last_counter = step
    codes = _new_recovery_codes(resident)
    record(AuditTag.TOTP_ENABLE, resident_id=resident.id)
    return codes


def disable(resident: Resident, password: str) -> None:
    if not resident.totp_enabled:
        raise TotpError("not_enabled")
    if not accounts.check_password(resident, password):
        raise TotpError("bad_password")
    resident.totp_secret = None
    resident.totp_enabled_at = None
    resident.totp_last_counter = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.resident_id == resident.id))
    record(AuditTag.TOTP_DISABLE, resident_id=resident.id)


def reset_by_operator(resident: Resident, actor: str) -> None:
    """``idp users reset-second-factor``: the operator turns TOTP off after checking
    the resident's identity out of band (phone and recovery codes lost)."""
    resident.totp_secret = None
    resident.totp_enabled_at = None
    resident.totp_last_counter = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.resident_id == resident.id))
    record(AuditTag.TOTP_DISABLE, actor=actor, resident_id=resident.id)


def regenerate_recovery_codes(resident: Resident, password: str) -> list[str]:
    if not resident.totp_enabled:
        raise TotpError("not_enabled")
    if not accounts.check_password(resident, password):
        raise TotpError("bad_password")
    return _new_recovery_codes(resident)


def _new_recovery_codes(resident: Resident) -> list[str]:
    """Replace every recovery code of the resident with ten new ones."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.resident_id == resident.id))
    codes = [secrets.random_id(RECOVERY_CODE_LENGTH) for _ in range(RECOVERY_CODES)]
    for code in codes:
        db.session.add(RecoveryCode(resident_id=resident.id, code_digest=secrets.digest(code)))
    db.session.flush()
    record(AuditTag.RECOVERY_CODES_CREATE, resident_id=resident.id, count=len(codes))
    return ["-".join(c[i:i + 4] for i in range(0, len(c), 4)) for c in codes]


def recovery_codes_left(resident_id: str) -> int:
    return db.session.scalar(
        select(func.count()).select_from(RecoveryCode)
        .where(RecoveryCode.resident_id == resident_id, RecoveryCode.used_at.is_(None))
    ) or 0


# ---- sign-in ----------------------------------------------------------------

def too_many_failures(resident_id: str) -> bool:
    return LOCKOUT.locked(
        lambda since: count_since([AuditTag.TOTP_FAILURE], since, resident_id=resident_id))


def verify_sign_in(resident: Resident, value: str) -> str:
    """Check the second factor at sign-in; returns the method ("otp" or "recovery_code").

    Raises TotpError: ``locked`` (too many failures), ``bad_code``, ``replayed``.
    Failures are audited; the caller commits them even when it refuses.
    """
    if not resident.totp_enabled:
        raise TotpError("not_enabled")
    if too_many_failures(resident.id):
        raise TotpError("locked")
    code = otp.normalise_code(value)
    if otp.CODE.match(code):
        problem = otp.use_code(resident, Resident.totp_last_counter, resident.totp_secret, code)
        if problem is None:
            return "otp"
        if problem == "replayed":
            record(AuditTag.TOTP_FAILURE, resident_id=resident.id, reason="replayed")
            raise TotpError("replayed")
    elif _use_recovery_code(resident, code):
        return "recovery_code"
    record(AuditTag.TOTP_FAILURE, resident_id=resident.id, reason="bad_code")
    raise TotpError("bad_code")


def _use_recovery_code(resident: Resident, value: str) -> bool:
    code = crockford(value)
    if len(code) != RECOVERY_CODE_LENGTH:
        return False
    used = db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.resident_id == resident.id,
               RecoveryCode.code_digest == secrets.digest(code),
               RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    if used == 1:
        record(AuditTag.RECOVERY_CODE_USE, resident_id=resident.id,
               left=recovery_codes_left(resident.id))
    return used == 1
