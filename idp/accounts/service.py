"""Residents: creation and password sign-in (browser sessions: ``idp.access.sessions``)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select

from idp.accounts import passwords
from idp.accounts.models import Gender
from idp.accounts.models import Resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db

POSTAL_CODE = re.compile(r"^[0-9]{3}-[0-9]{4}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")


class ResidentError(ValueError):
    """Invalid resident data; the message names the field."""


@dataclass
class Profile:
    family_name: str | None = None
    given_name: str | None = None
    family_name_kana: str | None = None
    given_name_kana: str | None = None
    birth_year: int | None = None
    gender: str | None = None
    postal_code: str | None = None
    locality: str | None = None


def full_name(family: str | None, given: str | None) -> str | None:
    """Family name first, as Japanese names are written; the claims and the consent
    screen show names the same way."""
    parts = [p for p in (family, given) if p]
    return " ".join(parts) or None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def validate_profile(profile: Profile, now: dt.datetime | None = None) -> None:
    year = (now or utcnow()).year
    if profile.birth_year is not None and not (year - 130 <= profile.birth_year <= year):
        raise ResidentError(f"birth_year must be between {year - 130} and {year}")
    if profile.gender is not None and profile.gender not in set(Gender):
        raise ResidentError("gender must be female, male or other")
    if profile.postal_code is not None and not POSTAL_CODE.match(profile.postal_code):
        raise ResidentError("postal_code must look like NNN-NNNN")
    for name in ("family_name", "given_name", "family_name_kana", "given_name_kana", "locality"):
        value = getattr(profile, name)
        if value is not None and (not value.strip() or len(value) > 100):
            raise ResidentError(f"{name} must be 1 to 100 characters")
        if value is not None and not value.isprintable():
            raise ResidentError(f"{name} must not contain control characters")


def valid_email(email: str) -> bool:
    # isprintable: no control characters (PostgreSQL refuses NUL in text).
    return len(email) <= 254 and email.isprintable() and bool(EMAIL.match(email))


def validate_password(password: str, email: str | None = None) -> None:
    if len(password) < MIN_PASSWORD:
        raise ResidentError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ResidentError(f"password must be at most {MAX_PASSWORD} characters")
    if email and password.strip().lower() == normalise_email(email):
        raise ResidentError("password must not be the email address")


def email_taken(email: str, except_id: str | None = None) -> bool:
    query = select(Resident.id).where(Resident.email == normalise_email(email))
    if except_id:
        query = query.where(Resident.id != except_id)
    return db.session.scalar(query) is not None


def find_by_email(email: str) -> Resident | None:
    email = normalise_email(email)
    if not valid_email(email):
        return None
    return db.session.scalar(select(Resident).where(Resident.email == email))


def create_resident(email: str, password: str, profile: Profile | None = None,
                    email_verified: bool = False, actor: str | None = None, *,
                    terms_version: str | None = None, locale: str | None = None,
                    channel: str | None = None) -> Resident:
    """Issue a consortium ID. ``terms_version`` records the terms the resident
    accepted (self-registration); without it they are asked at first sign-in."""
    email = normalise_email(email)
    if not valid_email(email):
        raise ResidentError("email is not a valid address")
    validate_password(password)
    profile = profile or Profile()
    validate_profile(profile)
    if email_taken(email):
        raise ResidentError("email is already registered")
    now = utcnow()
    resident = Resident(
        email=email,
        email_verified=email_verified,
        password_hash=passwords.hash_password(password),
        terms_version=terms_version,
        terms_accepted_at=now if terms_version else None,
        locale=locale,
        **vars(profile),
    )
    db.session.add(resident)
    db.session.flush()
    record(AuditTag.RESIDENT_CREATE, actor=actor, resident_id=resident.id,
           **({"channel": channel} if channel else {}))
    if terms_version:
        record(AuditTag.TERMS_ACCEPT, actor=actor, resident_id=resident.id,
               version=terms_version)
    return resident


def authenticate(email: str, password: str) -> Resident | None:
    """The resident for these credentials, or None. Failures are audited here;
    success is audited by ``idp.access.sessions.start_session`` once the sign-in
    is complete (after the second factor, when the resident has one).

    Unknown emails cost one argon2 verification too, so the answer's timing
    does not tell which accounts exist. A hash made with older parameters is
    upgraded on success.
    """
    email = normalise_email(email)
    resident = find_by_email(email) if valid_email(email) else None
    if resident is None:
        passwords.burn_time(password)
        record(AuditTag.LOGIN_FAILURE, reason="unknown_account")
        return None
    if not passwords.verify(resident.password_hash, password):
        record(AuditTag.LOGIN_FAILURE, resident_id=resident.id, reason="bad_password")
        return None
    if passwords.needs_rehash(resident.password_hash):
        resident.password_hash = passwords.hash_password(password)
    return resident


def check_password(resident: Resident, password: str) -> bool:
    """Re-entered password of a signed-in resident (changes, deletion)."""
    return bool(password) and len(password) <= MAX_PASSWORD and passwords.verify(
        resident.password_hash, password)
