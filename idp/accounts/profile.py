"""The resident changing their own data: profile, password, email address.

- Profile changes are audited with the names of the fields that changed
  (never the values). Companies see them on their next UserInfo call or ID
  token, because claims are read from the resident's row at release.
- A password change needs the current password; it ends the resident's other
  browser sessions (this one stays signed in; services they signed in to get
  a back-channel logout token) and mails a notice.
- An email change needs the current password and goes through verification:
  the new address is kept as ``pending_email`` and a link is sent to it; only
  when the link is followed does it replace ``email`` (``email_verified``
  true), and the old address is told. Until then the old address stays in
  use, so a typo cannot lock the resident out of recovery. When the new
  address already belongs to another consortium ID, the page answers exactly
  as for a free one and the owner of that address gets a notice instead of a
  link: the form never reveals which addresses are registered.
- A resident whose address is not verified yet (an ID an operator created)
  can ask for a verification link for it.
- The account's part of privacy operations (``idp.privacy``): the account and
  profile in a data export, and the resident row itself in a deletion.
"""

from __future__ import annotations

from flask import url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.access import service as access
from idp.access.models import BrowserSession
from idp.accounts import links
from idp.accounts import passwords
from idp.accounts import service as accounts
from idp.accounts.models import Passkey
from idp.accounts.models import RecoveryCode
from idp.accounts.models import Resident
from idp.accounts.service import Profile
from idp.accounts.totp import recovery_codes_left
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import delete_where
from idp.extensions import db
from idp.mail.service import Message
from idp.mail.service import compose


class ProfileError(ValueError):
    """A change was refused; ``reason`` names why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def update_profile(resident: Resident, profile: Profile) -> list[str]:
    """Store the new profile; returns the names of the fields that changed."""
    accounts.validate_profile(profile)
    changed = [name for name, value in vars(profile).items()
               if getattr(resident, name) != value]
    for name in changed:
        setattr(resident, name, getattr(profile, name))
    if changed:
        record(AuditTag.PROFILE_CHANGE, resident_id=resident.id, fields=sorted(changed))
    return changed


def change_password(resident: Resident, current: str, new: str,
                    session_row: BrowserSession | None) -> Message:
    if not accounts.check_password(resident, current):
        raise ProfileError("bad_password")
    accounts.validate_password(new, resident.email)
    resident.password_hash = passwords.hash_password(new)
    ended = access.end_sessions(resident, "password_change",
                                keep_session=session_row.id if session_row else None)
    record(AuditTag.PASSWORD_CHANGE, resident_id=resident.id, sessions_ended=ended)
    return compose("password_changed", resident.email, resident.locale,
                   reset_url=url_for("account.reset_request", _external=True))


# ---- email address ----------------------------------------------------------

def request_email_change(resident: Resident, new_email: str, password: str) -> Message:
    """Keep ``new_email`` pending and return the one mail to send to it."""
    if not accounts.check_password(resident, password):
        raise ProfileError("bad_password")
    new_email = accounts.normalise_email(new_email)
    if new_email == resident.email:
        raise ProfileError("same_email")
    resident.pending_email = new_email
    record(AuditTag.EMAIL_CHANGE_REQUEST, resident_id=resident.id)
    owner = accounts.find_by_email(new_email)
    if owner is not None:
        return compose("email_in_use", owner.email, owner.locale or resident.locale,
                       reset_url=url_for("account.reset_request", _external=True))
    return verification_mail(resident, new_email)


def cancel_email_change(resident: Resident) -> None:
    resident.pending_email = None


def verification_mail(resident: Resident, address: str) -> Message:
    token = links.make(links.VERIFY_EMAIL, r=resident.id, e=address)
    return compose("verify_email", address, resident.locale,
                   link=url_for("account.verify_email", token=token, _external=True),
                   hours=links.ttl(links.VERIFY_EMAIL) // 3600)


def address_to_verify(resident: Resident) -> str | None:
    """The address a verification link would be for: a pending change, or an
    unverified current address."""
    if resident.pending_email:
        return resident.pending_email
    return None if resident.email_verified else resident.email


def read_verification(token: str | None) -> tuple[Resident, dict]:
    """The resident and payload of a valid verification link; raises links.LinkError."""
    payload = links.read(links.VERIFY_EMAIL, token)
    resident = db.session.get(Resident, payload.get("r")) if isinstance(
        payload.get("r"), str) else None
    if resident is None or not isinstance(payload.get("e"), str):
        raise links.LinkError("invalid")
    if payload["e"] != address_to_verify(resident):
        # Verified already, or the resident asked for another address since.
        raise links.LinkError("used")
    return resident, payload


def verify_email(resident: Resident, payload: dict) -> list[Message]:
    """Apply a verification link: confirm the address, or complete the change.

    Returns the mail to send (a notice to the old address after a change).
    """
    address = payload["e"]
    if resident.pending_email == address and accounts.email_taken(address, resident.id):
        raise ProfileError("email_taken")
    links.consume(links.VERIFY_EMAIL, payload)
    if resident.pending_email == address:
        old = resident.email
        try:
            # The unique index settles a race with a registration of the same address.
            with db.session.begin_nested():
                resident.email = address
                resident.email_verified = True
                resident.pending_email = None
                db.session.flush()
        except IntegrityError as exc:
            raise ProfileError("email_taken") from exc
        record(AuditTag.EMAIL_CHANGE, resident_id=resident.id)
        return [compose("email_changed", old, resident.locale,
                        reset_url=url_for("account.reset_request", _external=True))]
    resident.email_verified = True
    record(AuditTag.EMAIL_VERIFY, resident_id=resident.id)
    return []


# ---- the account's part of privacy operations (idp.privacy) ---------------------------

def export_resident(resident_id: str, names) -> dict:
    """The resident's part of a data export: the consortium ID, the account and the
    profile. Secrets and their digests (password hash, TOTP secret, recovery codes)
    are not information about the resident and stay out."""
    resident = db.session.get(Resident, resident_id)
    return {
        "consortium_id": resident.display_id,
        "account": {
            "email": resident.email,
            "email_verified": resident.email_verified,
            "pending_email": resident.pending_email,
            "language": resident.locale,
            "created_at": resident.created_at,
            "updated_at": resident.updated_at,
            "terms_version_accepted": resident.terms_version,
            "terms_accepted_at": resident.terms_accepted_at,
            "statistics_opt_out_at": resident.statistics_opt_out_at,
            # Names and dates only: the public keys are not information about the resident.
            "passkeys": [{"name": p.name, "created_at": p.created_at,
                          "last_used_at": p.last_used_at, "synced": p.multi_device}
                         for p in db.session.scalars(select(Passkey).where(
                             Passkey.resident_id == resident_id).order_by(Passkey.id))],
            "two_step_verification": {
                "enabled": resident.totp_enabled,
                "enabled_at": resident.totp_enabled_at,
                "recovery_codes_left": (recovery_codes_left(resident_id)
                                        if resident.totp_enabled else 0),
            },
        },
        "profile": {
            "family_name": resident.family_name,
            "given_name": resident.given_name,
            "family_name_kana": resident.family_name_kana,
            "given_name_kana": resident.given_name_kana,
            "birth_year": resident.birth_year,
            "gender": resident.gender,
            "postal_code": resident.postal_code,
            "locality": resident.locality,
        },
    }


def forget_resident(resident_id: str) -> dict[str, int]:
    """The account's part of a deletion, last of all: the recovery codes, the passkeys and
    the resident row go, which frees the email address. Nothing to count."""
    delete_where(db.session, RecoveryCode, RecoveryCode.resident_id == resident_id)
    delete_where(db.session, Passkey, Passkey.resident_id == resident_id)
    db.session.delete(db.session.get(Resident, resident_id))
    db.session.flush()
    return {}
