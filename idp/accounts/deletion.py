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
- the pairwise subjects are deleted: no company can ever be given the same
  ``sub`` again, so nothing they hold can be re-linked to a later ID;
- touch events recorded against the resident lose their link
  (``resident_id`` NULL): they count as anonymous touches in the city
  aggregates, like those of passers-by who never signed in. No attribute
  (birth year, gender, municipality) is kept with them;
- the audit trail is de-identified (``audit.service.deidentify_resident``);
- the resident row goes, which frees the email address;
- the deletion itself is audited with counts only, no identifier.

What is kept and why is written up in docs/accounts.md.
"""

from __future__ import annotations

from flask import url_for
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from idp.access import service as access
from idp.access.models import BrowserSession
from idp.accounts import service as accounts
from idp.accounts.models import RecoveryCode
from idp.accounts.models import Resident
from idp.accounts.profile import ProfileError
from idp.audit.service import deidentify_resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.consent.models import Consent
from idp.consent.models import ConsentReceipt
from idp.db import delete_where
from idp.extensions import db
from idp.kiosk.models import TouchEvent
from idp.mail.service import Message
from idp.mail.service import compose


def delete_resident(resident: Resident, password: str) -> Message:
    """Delete the resident (see the module doc); returns the goodbye mail to send."""
    if not accounts.check_password(resident, password):
        raise ProfileError("bad_password")
    rid = resident.id
    goodbye = compose("account_deleted", resident.email, resident.locale,
                      register_url=url_for("account.register", _external=True))
    consents_in_force = db.session.scalar(
        select(func.count()).select_from(Consent)
        .where(Consent.resident_id == rid, Consent.withdrawn_at.is_(None))) or 0
    # Every service the resident was signed in to is told (back-channel logout)
    # before the rows that say so go; the messages do not keep the resident's id.
    access.end_sessions(rid, "account_deleted")
    access.revoke_grants(resident=rid, reason="account_deleted")
    counts = {"consents_withdrawn": consents_in_force, **access.forget_resident(rid)}
    delete_where(db.session, ConsentReceipt, ConsentReceipt.resident_id == rid)
    delete_where(db.session, Consent, Consent.resident_id == rid)
    delete_where(db.session, RecoveryCode, RecoveryCode.resident_id == rid)
    delete_where(db.session, BrowserSession, BrowserSession.resident_id == rid)
    counts["touch_events_anonymised"] = db.session.execute(
        update(TouchEvent).where(TouchEvent.resident_id == rid).values(resident_id=None)
        .execution_options(synchronize_session=False)).rowcount
    counts["audit_events_deidentified"] = deidentify_resident(rid)
    db.session.delete(resident)
    db.session.flush()
    record(AuditTag.ACCOUNT_DELETE, anonymous=True, **counts)
    return goodbye
