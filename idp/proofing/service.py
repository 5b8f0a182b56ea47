"""Identity proofing (身元証明): recording a check, and what it still proves.

At a consortium counter an admin compares the resident's registered
information with an official document and records which claims matched
(``name``, ``birthdate`` — the birth year we keep —, ``address`` — postal code
and municipality), the kind of document, the date of the check and the admin.

A recorded claim stays verified only while the resident's registered value
is the one that was checked (``digests``); after a change the claim is no
longer verified and is not released as such. A record can be withdrawn (a
mistake, a document found to be invalid); the newest record in force counts.

``proofing_for(resident_id)`` is what the resident's own account page shows;
``verified(resident)`` is what ``idp.oauth.assurance`` releases as
``verified_claims`` (OpenID Connect for Identity Assurance 1.0) to clients
the resident consented to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from idp.accounts.models import Resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db
from idp.proofing.models import IdentityProofing

# Claims a counter check can establish, in display order.
CLAIMS = ("name", "birthdate", "address")
CLAIM_LABELS = {"name": _l("Name"), "birthdate": _l("Birth year"),
                "address": _l("Address (postal code and municipality)")}
# Our evidence codes → the document type of OpenID Identity Assurance's
# document_details (predefined values where one fits).
EVIDENCE = {
    "my_number_card": "idcard",
    "drivers_licence": "driving_permit",
    "passport": "passport",
    "residence_card": "residence_permit",
}
EVIDENCE_LABELS = {
    "my_number_card": _l("My Number card"),
    "drivers_licence": _l("Driver's licence"),
    "passport": _l("Passport"),
    "residence_card": _l("Residence card"),
}
# A check is recorded on the day or soon after; older papers are not taken.
MAX_AGE = dt.timedelta(days=90)
CONSORTIUM_ID = re.compile(r"^[0-9A-Z]{16}$")


class ProofingError(ValueError):
    """A proofing record was refused; the message says why."""


@dataclass(frozen=True)
class Verified:
    """Claims one proofing record in force proves today."""

    proofing: IdentityProofing
    claims: tuple[str, ...]

    @property
    def evidence(self) -> str:
        return self.proofing.evidence

    @property
    def verified_on(self) -> dt.date:
        return self.proofing.verified_on


def claim_values(resident: Resident) -> dict[str, Any]:
    """The resident's current value of each claim a check can cover (None if unset)."""
    name = None
    if resident.family_name and resident.given_name:
        name = {"family_name": resident.family_name, "given_name": resident.given_name}
    address = None
    if resident.postal_code and resident.locality:
        address = {"postal_code": resident.postal_code, "locality": resident.locality}
    return {
        "name": name,
        "birthdate": f"{resident.birth_year:04d}" if resident.birth_year else None,
        "address": address,
    }


def _digest(resident_id: str, claim: str, value: Any) -> str:
    body = json.dumps([resident_id, claim, value], sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def find_resident(query: str) -> Resident | None:
    """A resident by consortium ID (dashes and case ignored) or by email address."""
    query = (query or "").strip()
    if not query or len(query) > 254:
        return None
    if "@" in query:
        return db.session.scalar(select(Resident).where(Resident.email == query.lower()))
    compact = query.replace("-", "").replace(" ", "").upper()
    if not CONSORTIUM_ID.match(compact):
        return None
    return db.session.get(Resident, compact)


def record_proofing(resident_id: str, claims: list[str], evidence: str,
                    verified_on: dt.date, admin_id: str,
                    actor: str | None = None) -> IdentityProofing:
    """Record a counter check: ``claims`` were matched against ``evidence`` on ``verified_on``."""
    resident = db.session.get(Resident, resident_id) if isinstance(resident_id, str) else None
    if resident is None:
        raise ProofingError("no such resident")
    chosen = [c for c in CLAIMS if c in set(claims or [])]
    if not chosen or len(chosen) != len(set(claims)):
        raise ProofingError("choose one or more of: " + ", ".join(CLAIMS))
    if evidence not in EVIDENCE:
        raise ProofingError("unknown kind of document")
    today = utcnow().date()
    if not isinstance(verified_on, dt.date) or isinstance(verified_on, dt.datetime):
        raise ProofingError("the date of the check must be a date")
    if verified_on > today + dt.timedelta(days=1) or verified_on < today - MAX_AGE:
        raise ProofingError("the date of the check must be within the last 90 days")
    values = claim_values(resident)
    missing = [c for c in chosen if values[c] is None]
    if missing:
        raise ProofingError("the resident has not registered: " + ", ".join(missing))
    row = IdentityProofing(
        resident_id=resident.id, claims=chosen,
        digests={c: _digest(resident.id, c, values[c]) for c in chosen},
        evidence=evidence, verified_on=verified_on, admin_id=admin_id)
    db.session.add(row)
    db.session.flush()
    record(AuditTag.PROOFING_RECORD, actor=actor, admin_id=admin_id, resident_id=resident.id,
           proofing_id=row.id, claims=chosen, evidence=evidence,
           verified_on=verified_on.isoformat())
    return row


def withdraw_proofing(proofing_id: int, reason: str, admin_id: str,
                      actor: str | None = None) -> IdentityProofing:
    row = db.session.get(IdentityProofing, proofing_id) if isinstance(proofing_id, int) \
        else None
    if row is None:
        raise ProofingError("no such proofing record")
    if row.withdrawn_at is not None:
        raise ProofingError("this proofing record was already withdrawn")
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise ProofingError("give a reason of 1 to 200 characters")
    row.withdrawn_at = utcnow()
    row.withdrawn_by = admin_id
    row.withdrawal_reason = reason
    record(AuditTag.PROOFING_WITHDRAW, actor=actor, admin_id=admin_id,
           resident_id=row.resident_id, proofing_id=row.id)
    return row


def proofings(resident_id: str) -> list[IdentityProofing]:
    return list(db.session.scalars(
        select(IdentityProofing).where(IdentityProofing.resident_id == resident_id)
        .order_by(IdentityProofing.verified_on.desc(), IdentityProofing.id.desc())))


def still_verified(resident: Resident, row: IdentityProofing) -> tuple[str, ...]:
    values = claim_values(resident)
    return tuple(c for c in row.claims
                 if values.get(c) is not None
                 and row.digests.get(c) == _digest(resident.id, c, values[c]))


def verified(resident: Resident) -> list[Verified]:
    """What the resident's proofing records in force still prove, newest record first.

    Each claim comes from the newest record in force that still verifies it,
    so a later check of the address alone does not undo an earlier check of
    the name. Empty when nothing is verified.
    """
    chosen: dict[str, IdentityProofing] = {}
    rows = [row for row in proofings(resident.id) if row.withdrawn_at is None]
    for row in rows:
        for claim in still_verified(resident, row):
            chosen.setdefault(claim, row)
    result = []
    for row in rows:
        claims = tuple(c for c in CLAIMS if chosen.get(c) is row)
        if claims:
            result.append(Verified(row, claims))
    return result


def proofing_for(resident_id: str) -> list[dict[str, Any]]:
    """The resident's proofing records for their account page, newest first.

    Each: ``claims`` checked, ``verified_claims`` still verified now (a
    changed name or address is no longer), ``evidence`` and its label, the
    date, whether it was withdrawn, and ``claims_in_use``: the claims services
    may receive from this record (with the resident's consent). The labels are
    lazy strings: they render in the page's language.
    """
    resident = db.session.get(Resident, resident_id) if isinstance(resident_id, str) else None
    if resident is None:
        return []
    in_use = {v.proofing.id: list(v.claims) for v in verified(resident)}
    return [{
        "id": row.id,
        "claims": list(row.claims),
        "claim_labels": [CLAIM_LABELS[c] for c in row.claims],
        "verified_claims": list(still_verified(resident, row)),
        "evidence": row.evidence,
        "evidence_label": EVIDENCE_LABELS.get(row.evidence, row.evidence),
        "verified_on": row.verified_on.isoformat(),
        "withdrawn": row.withdrawn_at is not None,
        "claims_in_use": in_use.get(row.id, []),
    } for row in proofings(resident.id)]
