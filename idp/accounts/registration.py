"""Self-registration: issuing the consortium ID, email first (仮登録 → 本登録).

1. ``request_registration``: the resident types an address. Whether or not it
   is registered, the answer is the same page and one mail goes to that
   address: a registration link when it is new, a notice ("you already
   have a consortium ID; sign in or reset your password") when it is not. The
   page never tells which, and both branches do the same work.
   The link carries an opaque random token only; its SHA-256 is stored with the
   address and the expiry (``RegistrationInvitation``), so the address is never
   in a URL. Links of the earlier, signed format (which carried the address) are
   refused with their own page asking for a new link.
2. ``complete_registration``: the link proves the address. The resident sets
   a password, fills in the profile (every item optional) and accepts the
   consortium's terms, including their two clauses from the seed (the ID and
   registered data are provided to member companies with consent; data
   obtained through member companies' services is collected by the
   consortium). The consortium ID is issued with ``email_verified`` true,
   because the address was verified before any account existed.

No account exists before step 2 succeeds, so nobody can squat an address they
do not read; the invitation row (address, expiry) is purged a day after it
expired, so a typo leaves nothing behind for long.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import url_for
from sqlalchemy import delete
from sqlalchemy import update

from idp import secrets
from idp.accounts import links
from idp.accounts import service as accounts
from idp.accounts.models import RegistrationInvitation
from idp.accounts.models import Resident
from idp.accounts.service import Profile
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db
from idp.mail.service import Message
from idp.mail.service import compose
from idp.terms import service as terms


class RegistrationError(ValueError):
    """The registration cannot be completed; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Invitation:
    """What a valid registration link carries."""

    email: str
    locale: str | None
    interaction: str | None
    digest: str


TOKEN_BYTES = 32
# Expired and used invitations stay this long, so their link gets "expired" or
# "used" rather than "invalid"; then they are purged.
KEEP_AFTER_EXPIRY = dt.timedelta(days=1)


def _purge(now: dt.datetime) -> None:
    db.session.execute(delete(RegistrationInvitation).where(
        RegistrationInvitation.expires_at <= now - KEEP_AFTER_EXPIRY))


def invite(email: str, locale: str | None, interaction: str | None) -> str:
    """A new registration token for ``email``; only its digest is stored."""
    now = utcnow()
    _purge(now)
    token = secrets.token(TOKEN_BYTES)
    db.session.add(RegistrationInvitation(
        digest=secrets.digest(token), email=email, locale=(locale or None),
        interaction=interaction[:100] if interaction else None, created_at=now,
        expires_at=now + dt.timedelta(seconds=links.ttl(links.REGISTER))))
    db.session.flush()
    return token


def request_registration(email: str, locale: str | None, interaction: str | None = None
                         ) -> Message:
    """The one mail to send for a registration request (see the module doc)."""
    existing = accounts.find_by_email(email)
    if existing is not None:
        record(AuditTag.REGISTRATION_EXISTING, resident_id=existing.id)
        return compose("registration_existing", existing.email, existing.locale or locale,
                       login_url=url_for("interaction.login", _external=True),
                       reset_url=url_for("account.reset_request", _external=True))
    token = invite(email, locale, interaction)
    return compose("registration", email, locale,
                   link=url_for("account.register_complete", token=token, _external=True),
                   hours=links.ttl(links.REGISTER) // 3600)


def read_invitation(token: str | None) -> Invitation:
    """The invitation behind a registration link; raises links.LinkError with reason
    ``invalid`` (unknown or altered token), ``expired``, ``used`` (also when the address
    got an ID meanwhile) or ``replaced`` (a link of the earlier, signed format)."""
    if not token or len(token) > links.MAX_TOKEN:
        raise links.LinkError("invalid")
    if "." in token:
        # itsdangerous tokens (payload.timestamp.signature) carried the address in
        # base64; our random tokens are URL-safe base64 without dots.
        raise links.LinkError("replaced")
    row = db.session.get(RegistrationInvitation, secrets.digest(token))
    if row is None:
        raise links.LinkError("invalid")
    if row.used_at is not None:
        raise links.LinkError("used")
    if row.expires_at <= utcnow():
        raise links.LinkError("expired")
    if accounts.email_taken(row.email):
        # The address was registered another way (another link, an operator).
        raise links.LinkError("used")
    return Invitation(row.email, row.locale, row.interaction, row.digest)


def _use(invitation: Invitation) -> None:
    """Mark the invitation used; LinkError("used") if another request used it first.
    The conditional UPDATE settles the race: only one request sees its row change."""
    result = db.session.execute(
        update(RegistrationInvitation)
        .where(RegistrationInvitation.digest == invitation.digest,
               RegistrationInvitation.used_at.is_(None))
        .values(used_at=utcnow()))
    if result.rowcount != 1:
        raise links.LinkError("used")


def complete_registration(invitation: Invitation, password: str, profile: Profile,
                          terms_version: str, locale: str | None) -> Resident:
    """Issue the consortium ID. The link is used up in the same transaction."""
    if terms_version != terms.current_version():
        raise RegistrationError("terms_changed")
    _use(invitation)
    return accounts.create_resident(
        invitation.email, password, profile, email_verified=True,
        terms_version=terms_version, locale=locale, channel="self_registration")


def welcome(resident: Resident) -> Message:
    return compose("registration_done", resident.email, resident.locale,
                   consortium_id=resident.display_id,
                   account_url=url_for("account.overview", _external=True))
