"""Deleting a consortium ID for good, keeping only what de-identified aggregates need.

After the password is re-entered, in one transaction:

- every service the resident was signed in to that registered a back-channel
  logout URI gets a logout token (``idp.access.service``; the queued messages
  keep no resident id);
- every token of the resident is deleted (introspection answers
  ``active: false`` and UserInfo ``invalid_token`` at once), with their
  authorization codes and device codes;
- every consent, consent receipt, recovery code and browser session is
  deleted;
- every registered-data record member companies contributed about the
  resident, every data link and every collection stop is deleted
  (``idp.exchange.residents``);
- the pairwise subjects are deleted: no company can ever be given the same
  ``sub`` again, so nothing they hold can be re-linked to a later ID;
- touch events recorded against the resident lose their link
  (``resident_id`` NULL): they count as anonymous touches in the city
  aggregates, like those of passers-by who never signed in. No attribute
  (birth year, gender, municipality) is kept with them, and the resident's
  frozen contributions to sealed hours of the city export are deleted;
- the audit trail is de-identified (``audit.service.deidentify_resident``);
- the resident row goes, which frees the email address;
- the deletion itself is audited with counts only, no identifier.

What is kept and why is written up in docs/accounts.md.

Each domain forgets its own part (``forget_resident(resident_id)``, returning
counts for the audit record), in the order of ``PARTS``: the trail is
de-identified after every other part, and the resident row goes last.
"""

from __future__ import annotations

from flask import url_for

from idp.access import service as access
from idp.accounts import profile
from idp.accounts import service as accounts
from idp.accounts.models import Resident
from idp.accounts.profile import ProfileError
from idp.audit import service as audit
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.citydata import export as citydata
from idp.consent import service as consent
from idp.exchange import residents as exchange
from idp.kiosk import service as kiosk
from idp.mail.service import Message
from idp.mail.service import compose

# Each domain's part, in the order they run; a new domain adds one line.
PARTS = [
    exchange.forget_resident,   # registered records, data links, collection stops deleted
    consent.forget_resident,    # consents_withdrawn; consents and receipts deleted
    access.forget_resident,     # tokens_revoked, pairwise_subjects_removed; codes, sessions
    kiosk.forget_resident,      # touch_events_anonymised
    citydata.forget_resident,   # city_contributions_deleted (frozen hours of the city export)
    audit.forget_resident,      # audit_events_deidentified
    profile.forget_resident,    # recovery codes, then the resident row
]


def delete_resident(resident: Resident, password: str) -> Message:
    """Delete the resident (see the module doc); returns the goodbye mail to send."""
    if not accounts.check_password(resident, password):
        raise ProfileError("bad_password")
    rid = resident.id
    goodbye = compose("account_deleted", resident.email, resident.locale,
                      register_url=url_for("account.register", _external=True))
    # Every service the resident was signed in to is told (back-channel logout)
    # before the rows that say so go; the messages do not keep the resident's id.
    access.end_sessions(rid, "account_deleted")
    access.revoke_grants(resident=rid, reason="account_deleted")
    counts: dict[str, int] = {}
    for part in PARTS:
        counts.update(part(rid))
    record(AuditTag.ACCOUNT_DELETE, anonymous=True, **counts)
    return goodbye
