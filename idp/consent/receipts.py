"""Consent receipts: the resident's own record of each consent given or withdrawn.

Each receipt follows the fields of the Kantara Initiative Consent Receipt
Specification v1.1 (``KI-CR-v1.1.0``), so it can be checked against the
notice-and-consent expectations of ISO/IEC 29184 (JIS X 9252):

- who: ``piiPrincipalId`` (the consortium ID: the receipt is the resident's
  own document, never sent to a company) and ``piiControllers`` (the company
  that receives the data, with its privacy policy);
- what and why: ``services`` → ``purposes`` with the purpose of use the client
  registered, ``consentType`` ``EXPLICIT`` and ``piiCategory`` = the items, in
  the words of the consent screen;
- how to stop: ``termination`` names the page where consent is withdrawn;
- when and how: ``consentTimestamp`` (NumericDate), ``collectionMethod``,
  ``jurisdiction`` ``JP`` and ``language``.

The specification has no member for the kind of event, so a withdrawal is
said in ``collectionMethod`` and ``termination``, and machine-readably in the
``extensions`` member (``jp.machi-id``: event, scopes, terms version, expiry).
The document is stored as issued (``consent_receipts``) and never rebuilt.
"""

from __future__ import annotations

import uuid

from flask import has_request_context
from flask_babel import force_locale
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from idp import config
from idp import locales
from idp.accounts.models import Resident
from idp.consent.items import items_for
from idp.consent.models import Consent
from idp.consent.models import ConsentReceipt
from idp.db import utcnow
from idp.extensions import db

SPEC_VERSION = "KI-CR-v1.1.0"
GIVEN = "given"
WITHDRAWN = "withdrawn"
NARROWED = "narrowed"  # one item stopped, the rest kept (consent.service.withdraw_item)
EXTENSION = "jp.machi-id"


def _language() -> str:
    return str(get_locale()) if has_request_context() else "ja"


def issue(resident: Resident, consent: Consent, event: str) -> ConsentReceipt:
    """Create and store the receipt for a consent just given or withdrawn."""
    client = consent.client
    now = utcnow()
    language = _language()
    with force_locale(language):  # also outside requests (CLI, tests)
        document = _document(resident, consent, event, language, now)
    receipt = ConsentReceipt(id=document["consentReceiptID"], resident_id=resident.id,
                             client_id=client.id, event=event, issued_at=now,
                             document=document)
    db.session.add(receipt)
    return receipt


def _document(resident: Resident, consent: Consent, event: str, language: str,
              now) -> dict:
    settings = config.settings()
    client = consent.client
    company = client.company
    purpose = (client.purpose_en if language == "en" and client.purpose_en else client.purpose)
    withdraw_url = settings.endpoint("/account/consents")
    policy_url = client.policy_uri or settings.terms_url or settings.endpoint("/terms")
    if event == WITHDRAWN:
        method = _("Withdrawal on the Machi ID page \"Data use by each service\" (%(url)s)",
                   url=withdraw_url)
        termination = _("Withdrawn on %(date)s. %(service)s receives no further information; "
                        "for information already provided, contact %(company)s.",
                        date=locales.japan_time(now, language), service=client.name,
                        company=company.name)
    elif event == NARROWED:
        method = _("Stopping an item on the Machi ID page \"Data use by each service\" "
                   "(%(url)s)", url=withdraw_url)
        termination = _("Withdraw at any time on the Machi ID page \"Data use by each "
                        "service\": %(url)s. For information already provided, contact "
                        "%(company)s.", url=withdraw_url, company=company.name)
    else:
        method = _("Consent screen of Machi ID (%(url)s), pressing \"Agree and start\"",
                   url=settings.issuer)
        termination = _("Withdraw at any time on the Machi ID page \"Data use by each "
                        "service\": %(url)s. For information already provided, contact "
                        "%(company)s.", url=withdraw_url, company=company.name)
    return {
        "version": SPEC_VERSION,
        "jurisdiction": "JP",
        "consentTimestamp": int(now.timestamp()),
        "collectionMethod": method,
        "consentReceiptID": str(uuid.uuid4()),
        "language": language,
        "piiPrincipalId": resident.id,
        "piiControllers": [{
            "piiController": company.name,
            "onBehalf": False,
            # The consortium does not hold companies' postal contact details yet
            # (the admin console, issue 4, will); the privacy policy is the contact.
            "contact": company.name,
            "address": {},
            "email": "",
            "phone": "",
            "piiControllerUrl": client.policy_uri or "",
        }],
        "policyUrl": policy_url,
        "services": [{
            "service": client.name,
            "purposes": [{
                "purpose": purpose or _("Provision of %(service)s", service=client.name),
                "purposeCategory": ["Core Function"],
                "consentType": "EXPLICIT",
                "piiCategory": [str(item.label) for item in items_for(consent.scopes)],
                "primaryPurpose": True,
                "termination": termination,
                "thirdPartyDisclosure": False,
            }],
        }],
        "sensitive": False,
        "spiCat": [],
        "extensions": {EXTENSION: {
            "event": event,
            "clientId": client.id,
            "companyId": company.id,
            "scopes": list(consent.scopes),
            "declinedScopes": list(consent.declined_scopes),
            "termsVersion": consent.terms_version,
            "grantedAt": consent.granted_at.isoformat(timespec="seconds"),
            "expiresAt": consent.expires_at.isoformat(timespec="seconds"),
            **({"withdrawnAt": consent.withdrawn_at.isoformat(timespec="seconds")}
               if consent.withdrawn_at else {}),
        }},
    }


def for_resident(resident_id: str) -> list[ConsentReceipt]:
    return list(db.session.scalars(
        select(ConsentReceipt).where(ConsentReceipt.resident_id == resident_id)
        .order_by(ConsentReceipt.issued_at.desc(), ConsentReceipt.id)))


def find(resident_id: str, receipt_id: str) -> ConsentReceipt | None:
    """The resident's own receipt, or None (another resident's id finds nothing)."""
    if not receipt_id or len(receipt_id) > 36 or not receipt_id.isascii() \
            or not receipt_id.isprintable():
        return None
    return db.session.scalar(
        select(ConsentReceipt).where(ConsentReceipt.id == receipt_id,
                                     ConsentReceipt.resident_id == resident_id))
