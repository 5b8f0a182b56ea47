"""Seed a migrated database with what the scenarios need, and write the data
files the wrk scripts read (``bench/wrk/common.lua``).

Companies, clients, the kiosk, the resident, the consent and the browser
session go through the services, as an operator's commands would. The pools
(access tokens, refresh tokens, pending device codes) are bulk-inserted rows
shaped exactly as ``idp.oauth.tokens.save`` and ``idp.oauth.device`` write
them: digests only (``idp.secrets``), user codes as HMACs.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy import insert

from idp import secrets
from idp.access import sessions
from idp.access.models import DeviceCode
from idp.access.models import Token
from idp.access.subjects import subject_for
from idp.accounts import service as accounts
from idp.clients import service as clients
from idp.consent import service as consent
from idp.db import utcnow
from idp.extensions import db
from idp.keys import service as keys
from idp.kiosk import service as kiosks
from idp.oauth.device import new_user_code
from idp.oauth.device import normalise_user_code
from idp.oauth.device import user_code_digest
from idp.terms import service as terms

REDIRECT_URI = "https://rp.example.jp/callback"
EMAIL = "bench@example.jp"
PASSWORD = "bench-password-2026"  # noqa: S105 - a benchmark resident's password
RP_SCOPES = ["openid", "name", "email", "offline_access"]
FLOW_SCOPE = "openid name email"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class Pools:
    # Residents' access tokens for userinfo and introspection, each used many times
    # as a relying party does during a token's life: UserInfo records a token's
    # first release in the audit trail, later calls only read (docs/performance.md).
    access_tokens: int = 1000
    refresh_tokens: int = 60000
    device_codes: int = 25000
    kiosks: int = 32


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def _chunks(rows: list[dict], size: int = 5000):
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


def seed(app: Flask, out: Path, pools: Pools) -> dict[str, str]:
    """Fill the database behind ``app``; write ``out``/values.txt and the pools."""
    out.mkdir(parents=True, exist_ok=True)
    with app.test_request_context():
        keys.ensure_keys()
        member = clients.create_company("ベンチ株式会社", actor="bench")
        operator = clients.create_company("ベンチ・サイネージ", actor="bench")
        rp, rp_secret = clients.register_client(
            member.id, "ベンチRP", redirect_uris=[REDIRECT_URI], scopes=RP_SCOPES,
            grant_types=["authorization_code", "refresh_token"],
            purpose="ベンチマーク", actor="bench")
        # The company's backend: client_credentials tokens, and introspection of
        # tokens issued to its RP (same company, RFC 7662 permission).
        backend, backend_secret = clients.register_client(
            member.id, "ベンチ・バックエンド", scopes=["touch_events"],
            grant_types=["client_credentials"], purpose="ベンチマーク", actor="bench")
        kiosk, kiosk_secret, _ = kiosks.create_kiosk(operator.id, "ベンチ・キオスク 1",
                                                    "北1条西2丁目", actor="bench")
        # More screens for the touch-event scenario: batches come from many kiosks.
        screens = [kiosk] + [
            kiosks.create_kiosk(operator.id, f"ベンチ・キオスク {n}", f"北{n}条西2丁目",
                                actor="bench")[0]
            for n in range(2, pools.kiosks + 1)]
        resident = accounts.create_resident(
            EMAIL, PASSWORD, accounts.Profile(family_name="札幌", given_name="花子"),
            email_verified=True, terms_version=terms.current_version())
        consent.grant(resident, rp, FLOW_SCOPE.split() + ["offline_access"],
                      FLOW_SCOPE.split() + ["offline_access"])
        sid, _ = sessions.start_session(resident)
        sub = subject_for(resident.id, member.id)
        db.session.commit()

        now = utcnow()
        access, refresh, device = [], [], []
        rows = []
        for _ in range(pools.access_tokens):
            value = secrets.token(32)
            access.append(value)
            rows.append(_token_row(rp.id, resident.id, sub, FLOW_SCOPE, value, None, now))
        for _ in range(pools.refresh_tokens):
            value = secrets.token(32)
            refresh.append(value)
            rows.append(_token_row(rp.id, resident.id, sub, FLOW_SCOPE + " offline_access",
                                   secrets.token(32), value, now))
        kiosk_tokens = []
        for screen in screens:
            value = secrets.token(32)
            kiosk_tokens.append(value)
            rows.append({**_token_row(screen.id, None, None, "touch_events", value, None, now),
                         "grant_type": "client_credentials"})
        for chunk in _chunks(rows):
            db.session.execute(insert(Token), chunk)
        codes = []
        # User codes are unique among live codes; tens of thousands drawn at once
        # from 20^8 would collide now and then (the birthday bound), so redraw.
        user_codes: set[str] = set()
        for _ in range(pools.device_codes):
            value = secrets.token(32)
            device.append(value)
            user_code = normalise_user_code(new_user_code())
            while user_code in user_codes:
                user_code = normalise_user_code(new_user_code())
            user_codes.add(user_code)
            codes.append({
                "device_code_digest": secrets.digest(value),
                "user_code_digest": user_code_digest(user_code),
                "client_id": kiosk.id, "scope": "openid touch_events", "created_at": now,
                "expires_at": now + dt.timedelta(hours=6), "interval": 5, "status": "pending",
            })
        for chunk in _chunks(codes):
            db.session.execute(insert(DeviceCode), chunk)
        db.session.commit()

        cookie = app.session_interface.get_signing_serializer(app).dumps(
            {"sid": sid, "_permanent": True})
        verifier, challenge = _pkce()
        values = {
            "rp_id": rp.id,
            "rp_basic": _basic(rp.id, rp_secret),
            "redirect_uri": REDIRECT_URI,
            "flow_scope": FLOW_SCOPE,
            "code_verifier": verifier,
            "code_challenge": challenge,
            "session_cookie": f"{app.config['SESSION_COOKIE_NAME']}={cookie}",
            "backend_id": backend.id,
            "backend_basic": _basic(backend.id, backend_secret),
            "kiosk_id": kiosk.id,
            "kiosk_basic": _basic(kiosk.id, kiosk_secret),
            "occurred_at": (now - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "email": EMAIL,
            "password": PASSWORD,
        }
    (out / "values.txt").write_text("".join(f"{k}\t{v}\n" for k, v in values.items()))
    for name, pool in (("access_tokens", access), ("refresh_tokens", refresh),
                       ("device_codes", device), ("kiosk_tokens", kiosk_tokens)):
        (out / f"{name}.txt").write_text("\n".join(pool) + "\n")
    return values


def _token_row(client_id: str, resident_id: str | None, sub: str | None, scope: str,
               access: str, refresh: str | None, now: dt.datetime) -> dict:
    """A row as ``idp.oauth.tokens.save`` writes it, long-lived for the run."""
    return {
        "client_id": client_id, "resident_id": resident_id, "subject": sub,
        "grant_type": "authorization_code", "scope": scope,
        "access_token_digest": secrets.digest(access),
        "refresh_token_digest": secrets.digest(refresh) if refresh else None,
        "family_id": secrets.token(24), "code_id": None, "issued_at": now,
        "access_expires_at": now + dt.timedelta(hours=6),
        "refresh_expires_at": now + dt.timedelta(days=1) if refresh else None,
        "claims": None,
    }
