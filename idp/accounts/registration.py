"""Self-registration: issuing the consortium ID, email first (仮登録 → 本登録).

1. ``request_registration``: the resident types an address. Whether or not it
   is registered, the answer is the same page and one mail goes to that
   address: a signed registration link when it is new, a notice ("you already
   have a consortium ID; sign in or reset your password") when it is not. The
   page never tells which, and both branches do the same work.
2. ``complete_registration``: the link proves the address. The resident sets
   a password, fills in the profile (every item optional) and accepts the
   consortium's terms, including their two clauses from the seed (the ID and
   registered data are provided to member companies with consent; data
   obtained through member companies' services is collected by the
   consortium). The consortium ID is issued with ``email_verified`` true,
   because the address was verified before any account existed.

No personal data is stored before step 2 succeeds, so nobody can squat an
address they do not read, and a typo leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import url_for

from idp.accounts import links
from idp.accounts import service as accounts
from idp.accounts.models import Resident
from idp.accounts.service import Profile
from idp.audit.service import record
from idp.audit.tags import AuditTag
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
    payload: dict


def request_registration(email: str, locale: str | None, interaction: str | None = None
                         ) -> Message:
    """The one mail to send for a registration request (see the module doc)."""
    existing = accounts.find_by_email(email)
    if existing is not None:
        record(AuditTag.REGISTRATION_EXISTING, resident_id=existing.id)
        return compose("registration_existing", existing.email, existing.locale or locale,
                       login_url=url_for("interaction.login", _external=True),
                       reset_url=url_for("account.reset_request", _external=True))
    token = links.make(links.REGISTER, e=email, l=locale, i=interaction)
    return compose("registration", email, locale,
                   link=url_for("account.register_complete", token=token, _external=True),
                   hours=links.ttl(links.REGISTER) // 3600)


def read_invitation(token: str | None) -> Invitation:
    """The registration link's content; raises links.LinkError, or
    RegistrationError("registered") when the address got an ID meanwhile."""
    payload = links.read(links.REGISTER, token)
    email = payload.get("e")
    if not isinstance(email, str) or not accounts.valid_email(email):
        raise links.LinkError("invalid")
    if accounts.email_taken(email):
        # The link did its job already (or the address was registered another way).
        raise links.LinkError("used")
    locale = payload.get("l") if isinstance(payload.get("l"), str) else None
    interaction = payload.get("i") if isinstance(payload.get("i"), str) else None
    return Invitation(email, locale, interaction, payload)


def complete_registration(invitation: Invitation, password: str, profile: Profile,
                          terms_version: str, locale: str | None) -> Resident:
    """Issue the consortium ID. The link is used up in the same transaction."""
    if terms_version != terms.current_version():
        raise RegistrationError("terms_changed")
    links.consume(links.REGISTER, invitation.payload)
    return accounts.create_resident(
        invitation.email, password, profile, email_verified=True,
        terms_version=terms_version, locale=locale, channel="self_registration")


def welcome(resident: Resident) -> Message:
    return compose("registration_done", resident.email, resident.locale,
                   consortium_id=resident.display_id,
                   account_url=url_for("account.overview", _external=True))
