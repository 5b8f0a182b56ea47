"""Residents' passkeys: add, name, list, remove, and sign in with one.

The WebAuthn checks are py_webauthn's (``idp.security.passkeys``); this module
keeps the state around them:

- **Challenges** are stored server-side (``PasskeyChallenge``), live
  ``CHALLENGE_TTL`` seconds and are consumed atomically (``idp.db.claim_once``)
  before the response is checked: a replayed or concurrent second response
  finds the challenge taken. The browser only carries the challenge's row id.
- **Counters and backup flags**: the signature counter must grow (the library
  refuses otherwise, and the failure is audited as ``counter``); the
  backup-eligible flag (BE) never changes for a credential, so a response
  that flips it is refused (``backup_eligibility``); the backup state (BS) is
  updated on each use.
- **Sign-in** with a passkey is audited like a password one: a failure is a
  ``resident:login:failure`` row with the reason, the success is the session's
  ``resident:login:success`` with its ``amr``. Wrong attempts count towards the
  same per-address rate limit as the password form (the view).
- **Losing every passkey** changes nothing else: the password (and TOTP, when
  on) still signs in, and the password reset by mail is the recovery path.

The WebAuthn user handle is the resident's random consortium id (no address or
name); the name shown by the authenticator is the address.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy import select

from idp import config
from idp import secrets
from idp.accounts.models import Passkey
from idp.accounts.models import PasskeyChallenge
from idp.accounts.models import Resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import claim_once
from idp.db import utcnow
from idp.extensions import db
from idp.security import passkeys as webauthn
from idp.security.passkeys import PasskeyError

CHALLENGE_TTL = dt.timedelta(minutes=3)
MAX_NAME = 64
MAX_PASSKEYS = 20
REGISTER = "register"
SIGN_IN = "sign_in"

__all__ = ["PasskeyError"]


def _issuer() -> str:
    return config.settings().issuer


# ---- challenges (shared with the console's admin passkeys) ----------------------

def new_challenge(purpose: str, subject: str | None = None) -> tuple[str, bytes]:
    """Store a fresh challenge; returns its row id (for the browser) and its bytes."""
    now = utcnow()
    db.session.execute(delete(PasskeyChallenge).where(PasskeyChallenge.expires_at <= now))
    challenge = webauthn.new_challenge()
    row = PasskeyChallenge(id=secrets.token(16), purpose=purpose, subject=subject,
                           challenge=challenge, expires_at=now + CHALLENGE_TTL)
    db.session.add(row)
    db.session.flush()
    return row.id, challenge


def take_challenge(challenge_id: str | None, purpose: str, subject: str | None = None
                   ) -> bytes:
    """Consume the challenge once; PasskeyError("challenge") when unknown, expired,
    already used, or made for another ceremony or person."""
    if not isinstance(challenge_id, str) or not 10 <= len(challenge_id) <= 32:
        raise PasskeyError("challenge")
    now = utcnow()
    row = db.session.get(PasskeyChallenge, challenge_id)
    if row is None or row.purpose != purpose or row.subject != subject \
            or row.expires_at <= now:
        raise PasskeyError("challenge")
    if not claim_once(db.session, PasskeyChallenge.used_at, challenge_id, now,
                      PasskeyChallenge.expires_at > now):
        raise PasskeyError("challenge")
    return row.challenge


def credential_ids(rows) -> list[bytes]:
    return [webauthn.from_base64url(row.credential_id) for row in rows]


# ---- the resident's passkeys ----------------------------------------------------------

def passkeys_of(resident_id: str) -> list[Passkey]:
    return list(db.session.scalars(
        select(Passkey).where(Passkey.resident_id == resident_id).order_by(Passkey.id)))


def has_passkey(resident_id: str) -> bool:
    return db.session.scalar(
        select(Passkey.id).where(Passkey.resident_id == resident_id).limit(1)) is not None


def can_satisfy(resident_id: str, acr_values: list[str]) -> bool:
    """Whether one of the resident's passkeys could meet the requested ACR values:
    any passkey for ``phr``, a device-bound one for ``phrh`` alone."""
    wanted = [v for v in acr_values if v in webauthn.ACR_VALUES]
    if not wanted:
        return False
    rows = passkeys_of(resident_id)
    if webauthn.ACR_PHISHING_RESISTANT in wanted:
        return bool(rows)
    return any(not row.multi_device for row in rows)


def begin_registration(resident: Resident) -> tuple[str, str]:
    """(challenge id, creation options as JSON) for adding a passkey."""
    challenge_id, challenge = new_challenge(REGISTER, resident.id)
    options = webauthn.registration_options(
        _issuer(), challenge, resident.id.encode(), resident.email, resident.email,
        credential_ids(passkeys_of(resident.id)))
    return challenge_id, options


def default_name(count: int) -> str:
    return f"Passkey {count}"


def finish_registration(resident: Resident, challenge_id: str | None, response,
                        name: str | None = None) -> Passkey:
    """Verify the new credential and keep it; PasskeyError otherwise."""
    challenge = take_challenge(challenge_id, REGISTER, resident.id)
    existing = passkeys_of(resident.id)
    if len(existing) >= MAX_PASSKEYS:
        raise PasskeyError("too_many")
    made = webauthn.verify_registration(_issuer(), response, challenge)
    if db.session.scalar(select(Passkey.id).where(
            Passkey.credential_id == made.credential_id)) is not None:
        raise PasskeyError("duplicate")
    row = Passkey(resident_id=resident.id, credential_id=made.credential_id,
                  public_key=made.public_key, sign_count=made.sign_count, aaguid=made.aaguid,
                  transports=made.transports, multi_device=made.multi_device,
                  backed_up=made.backed_up,
                  name=clean_name(name) or default_name(len(existing) + 1))
    db.session.add(row)
    db.session.flush()
    record(AuditTag.PASSKEY_ADD, resident_id=resident.id, passkey=row.id,
           multi_device=made.multi_device)
    return row


def clean_name(name: str | None) -> str:
    return " ".join((name or "").split())[:MAX_NAME]


def _own(resident: Resident, passkey_id: int) -> Passkey:
    row = db.session.get(Passkey, passkey_id)
    if row is None or row.resident_id != resident.id:
        raise PasskeyError("not_found")
    return row


def rename(resident: Resident, passkey_id: int, name: str) -> Passkey:
    row = _own(resident, passkey_id)
    name = clean_name(name)
    if not name:
        raise PasskeyError("empty_name")
    if name != row.name:
        row.name = name
        record(AuditTag.PASSKEY_RENAME, resident_id=resident.id, passkey=row.id)
    return row


def remove(resident: Resident, passkey_id: int) -> None:
    """Forget a passkey; the password (and the mail reset) still sign in."""
    row = _own(resident, passkey_id)
    db.session.delete(row)
    record(AuditTag.PASSKEY_REMOVE, resident_id=resident.id, passkey=passkey_id,
           left=len(passkeys_of(resident.id)) - 1)


# ---- sign-in ----------------------------------------------------------------------

def begin_sign_in() -> tuple[str, str]:
    """(challenge id, request options as JSON) with no allowed list: the browser
    offers the resident's discoverable passkeys for this site."""
    challenge_id, challenge = new_challenge(SIGN_IN)
    return challenge_id, webauthn.authentication_options(_issuer(), challenge)


def check_owner(owner_id: str, response) -> None:
    """A user handle in the assertion must be the credential owner's (WebAuthn §7.2)."""
    handle = webauthn.user_handle_of(response)
    if handle is not None and handle != owner_id.encode():
        raise PasskeyError("user_handle")


def check_assertion(row, response, challenge: bytes) -> webauthn.Asserted:
    """Verify an assertion for a stored credential (resident's or admin's) and update
    its counter, backup state and last use."""
    asserted = webauthn.verify_authentication(_issuer(), response, challenge,
                                              row.public_key, row.sign_count)
    if asserted.multi_device != row.multi_device:
        raise PasskeyError("backup_eligibility")
    row.sign_count = asserted.sign_count
    row.backed_up = asserted.backed_up
    row.last_used_at = utcnow()
    return asserted


def sign_in(challenge_id: str | None, response) -> tuple[Resident, list[str]]:
    """The resident whose passkey signed this challenge, and the sign-in's ``amr``.
    Every refusal is audited as a login failure; the caller commits either way."""
    try:
        challenge = take_challenge(challenge_id, SIGN_IN)
        credential_id = webauthn.credential_id_of(response)
        row = db.session.scalar(select(Passkey).where(Passkey.credential_id == credential_id))
        if row is None:
            raise PasskeyError("unknown_passkey")
        try:
            check_owner(row.resident_id, response)
            asserted = check_assertion(row, response, challenge)
        except PasskeyError as error:
            record(AuditTag.LOGIN_FAILURE, resident_id=row.resident_id, method="passkey",
                   reason=error.reason)
            raise
    except PasskeyError as error:
        if error.reason in ("challenge", "unknown_passkey", "malformed", "too_large"):
            record(AuditTag.LOGIN_FAILURE, method="passkey", reason=error.reason)
        raise
    resident = db.session.get(Resident, row.resident_id)
    return resident, webauthn.amr(asserted.multi_device, asserted.user_verified)

