"""Data portability (GDPR Art. 20): everything held about a resident, as JSON.

Included: the account and profile, the pairwise subjects each company knows
the resident by, consents and every consent receipt, sign-in sessions, token
grants (metadata only), the full audit trail about the resident and the touch
events kiosks recorded. Left out on purpose: secrets and their digests (the
password hash, the TOTP secret, recovery-code, token and session digests),
which are not information about the resident and would only help an attacker
who got hold of the file.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from idp import config
from idp.accounts.models import BrowserSession
from idp.accounts.models import Resident
from idp.accounts.totp import recovery_codes_left
from idp.audit.models import AuditEvent
from idp.clients.models import Client
from idp.clients.models import Company
from idp.consent.models import Consent
from idp.consent.receipts import for_resident
from idp.db import utcnow
from idp.extensions import db
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent
from idp.oauth.models import PairwiseSubject
from idp.oauth.models import Token

FORMAT = "machi-id/resident-export/1"


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def export(resident: Resident) -> dict[str, Any]:
    rid = resident.id
    settings = config.settings()

    def company_name(company_id: str | None) -> str | None:
        company = db.session.get(Company, company_id) if company_id else None
        return company.name if company else None

    def service(client_id: str | None) -> dict[str, Any]:
        client = db.session.get(Client, client_id) if client_id else None
        if client is None:
            return {"client_id": client_id}
        return {"client_id": client.id, "service": client.name,
                "company_id": client.company_id, "company": client.company.name}

    return {
        "format": FORMAT,
        "exported_at": _time(utcnow()),
        "issuer": settings.issuer,
        "consortium_id": resident.display_id,
        "account": {
            "email": resident.email,
            "email_verified": resident.email_verified,
            "pending_email": resident.pending_email,
            "language": resident.locale,
            "created_at": _time(resident.created_at),
            "updated_at": _time(resident.updated_at),
            "terms_version_accepted": resident.terms_version,
            "terms_accepted_at": _time(resident.terms_accepted_at),
            "two_step_verification": {
                "enabled": resident.totp_enabled,
                "enabled_at": _time(resident.totp_enabled_at),
                "recovery_codes_left": recovery_codes_left(rid) if resident.totp_enabled else 0,
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
        "pairwise_subjects": [
            {"company_id": p.company_id, "company": company_name(p.company_id), "sub": p.sub,
             "since": _time(p.created_at)}
            for p in db.session.scalars(select(PairwiseSubject)
                                        .where(PairwiseSubject.resident_id == rid)
                                        .order_by(PairwiseSubject.created_at))
        ],
        "consents": [
            {**service(c.client_id), "scopes": list(c.scopes),
             "declined_scopes": list(c.declined_scopes), "terms_version": c.terms_version,
             "granted_at": _time(c.granted_at), "expires_at": _time(c.expires_at),
             "withdrawn_at": _time(c.withdrawn_at)}
            for c in db.session.scalars(select(Consent).where(Consent.resident_id == rid)
                                        .order_by(Consent.granted_at))
        ],
        "consent_receipts": [r.document for r in for_resident(rid)],
        "sessions": [
            {"signed_in_at": _time(s.auth_time), "expires_at": _time(s.expires_at),
             "ended_at": _time(s.ended_at), "methods": list(s.amr or [])}
            for s in db.session.scalars(select(BrowserSession)
                                        .where(BrowserSession.resident_id == rid)
                                        .order_by(BrowserSession.auth_time))
        ],
        "tokens": [
            {**service(t.client_id), "grant_type": t.grant_type, "scope": t.scope,
             "issued_at": _time(t.issued_at), "access_expires_at": _time(t.access_expires_at),
             "refresh_expires_at": _time(t.refresh_expires_at),
             "revoked_at": _time(t.revoked_at)}
            for t in db.session.scalars(select(Token).where(Token.resident_id == rid)
                                        .order_by(Token.issued_at))
        ],
        "history": [
            {"at": _time(e.at), "event": e.tag,
             **(service(e.client_id) if e.client_id else
                {"company_id": e.company_id, "company": company_name(e.company_id)}
                if e.company_id else {}),
             "ip": e.ip, "user_agent": e.user_agent, "details": e.data}
            for e in db.session.scalars(select(AuditEvent).where(AuditEvent.resident_id == rid)
                                        .order_by(AuditEvent.at, AuditEvent.id))
        ],
        "touch_events": [
            {"occurred_at": _time(t.occurred_at), "received_at": _time(t.received_at),
             **service(t.client_id), "location": location, "target": t.target,
             "event_id": t.event_id}
            for t, location in db.session.execute(
                select(TouchEvent, Kiosk.location)
                .outerjoin(Kiosk, Kiosk.client_id == TouchEvent.client_id)
                .where(TouchEvent.resident_id == rid)
                .order_by(TouchEvent.occurred_at, TouchEvent.id))
        ],
    }
