"""Data portability (GDPR Art. 20): everything held about a resident, as JSON.

Included: the account and profile, the pairwise subjects each company knows
the resident by, consents and every consent receipt, sign-in sessions, token
grants (metadata only), the full audit trail about the resident, the touch
events kiosks recorded, and the data exchange's part: every registered-data
record with its provenance, every data link and every collection stop. Left
out on purpose: secrets and their digests (the password hash, the TOTP
secret, recovery-code, token and session digests), which are not information
about the resident and would only help an attacker who got hold of the file.

Each domain writes its own part (``export_resident(resident_id, names)``, in
the order of ``PARTS``: the order of the file's sections); this module adds
the header, names clients and companies for people (``Names``: the parts
know them by id) and writes every time the same way (ISO 8601, to the second).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from idp import config
from idp.access import service as access
from idp.access import subjects
from idp.accounts import profile
from idp.accounts.models import Resident
from idp.audit import service as audit
from idp.clients.models import Client
from idp.clients.models import Company
from idp.consent import service as consent
from idp.db import utcnow
from idp.exchange import residents as exchange
from idp.extensions import db
from idp.kiosk import service as kiosk

FORMAT = "machi-id/resident-export/1"

# Each domain's part, in the order of the file's sections; a new domain adds one line.
PARTS = [
    profile.export_resident,    # consortium_id, account, profile
    subjects.export_resident,   # pairwise_subjects
    consent.export_resident,    # consents, consent_receipts
    access.export_resident,     # sessions, tokens
    audit.export_resident,      # history
    kiosk.export_resident,      # touch_events
    exchange.export_resident,   # registered_data, data_links, collection_stops
]


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _times(value: Any) -> Any:
    """Every datetime in a part, written to the second."""
    if isinstance(value, dt.datetime):
        return _time(value)
    if isinstance(value, dict):
        return {key: _times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_times(item) for item in value]
    return value


class Names:
    """Clients and companies as people read them, for the parts that know them by id."""

    def company(self, company_id: str | None) -> str | None:
        company = db.session.get(Company, company_id) if company_id else None
        return company.name if company else None

    def service(self, client_id: str | None) -> dict[str, Any]:
        client = db.session.get(Client, client_id) if client_id else None
        if client is None:
            return {"client_id": client_id}
        return {"client_id": client.id, "service": client.name,
                "company_id": client.company_id, "company": client.company.name}


def export(resident: Resident) -> dict[str, Any]:
    settings = config.settings()
    names = Names()
    data: dict[str, Any] = {
        "format": FORMAT,
        "exported_at": _time(utcnow()),
        "issuer": settings.issuer,
    }
    for part in PARTS:
        data.update(_times(part(resident.id, names)))
    return data
