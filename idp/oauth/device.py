"""RFC 8628 device authorization grant: the kiosk side.

``DeviceAuthorizationEndpoint`` hands a kiosk a device code (for polling) and
a user code (for the resident's phone); ``DeviceCodeGrant`` answers the polls:

- ``authorization_pending`` until the resident decides (§3.5);
- ``slow_down`` when a kiosk polls faster than its interval, which then grows
  by 5 seconds for the rest of the code's life (§3.5);
- ``access_denied`` after a decline, ``expired_token`` after expiry;
- tokens exactly once: the approved code is consumed with a conditional UPDATE,
  so parallel polls cannot both win (fosite stores only signatures; so do we).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets as std_secrets

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import UnauthorizedClientError
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE
from authlib.oauth2.rfc8628 import AuthorizationPendingError
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint as _DeviceAuthorizationEndpoint
from authlib.oauth2.rfc8628 import DeviceCodeGrant as _DeviceCodeGrant
from authlib.oauth2.rfc8628 import ExpiredTokenError
from authlib.oauth2.rfc8628 import SlowDownError
from flask import current_app
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import literal_column
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import lazyload

from idp import config
from idp import secrets
from idp.access import epoch
from idp.access.models import DeviceCode
from idp.access.subjects import subject_for
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import claim_once
from idp.db import dialect_insert
from idp.db import utcnow
from idp.extensions import db
from idp.oauth.grants import ALL_AUTH_METHODS
from idp.oauth.grants import WithinConsent
from idp.oauth.tokens import Principal

# RFC 8628 §6.1: base-20 consonants, no vowels (no words), no look-alikes.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
SLOW_DOWN_STEP = 5
USER_CODE_ATTEMPTS = 5


class TemporarilyUnavailable(OAuth2Error):
    """RFC 6749's ``temporarily_unavailable``, answered with 503 (never seen unless
    five user codes drawn in a row all collide)."""

    error = "temporarily_unavailable"
    status_code = 503


def new_user_code() -> str:
    code = "".join(std_secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    return format_user_code(code)


def normalise_user_code(value: str | None) -> str | None:
    """Upper-case, drop hyphens and spaces; None unless 8 letters of the alphabet remain."""
    if not isinstance(value, str) or len(value) > 32:
        return None
    code = "".join(c for c in value.upper() if c not in "- \t")
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        return None
    return code


def format_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def user_code_digest(code: str) -> str:
    """HMAC of a normalised user code under the server secret (34 bits need a key)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def find_by_user_code(value: str | None) -> DeviceCode | None:
    """The device authorization a user code names, if it is still pending and unexpired."""
    code = normalise_user_code(value)
    if code is None:
        return None
    row = db.session.scalar(
        select(DeviceCode).where(DeviceCode.user_code_digest == user_code_digest(code))
    )
    if row is None or row.status != "pending" or row.is_expired():
        return None
    return row


class DeviceAuthorizationEndpoint(_DeviceAuthorizationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def authenticate_client(self, request):
        client = super().authenticate_client(request)
        if not client.check_grant_type(DEVICE_CODE_GRANT_TYPE):
            raise UnauthorizedClientError("The client is not registered for the device grant.")
        scope = request.payload.scope
        if scope and client.get_allowed_scope(scope) is None:
            raise InvalidScopeError("The client is not registered for the requested scope.")
        return client

    def create_endpoint_response(self, request):
        settings = config.settings()
        self.EXPIRES_IN = settings.device_code_ttl
        self.INTERVAL = settings.device_poll_interval
        return super().create_endpoint_response(request)

    def generate_user_code(self) -> str:
        return new_user_code()

    def generate_device_code(self) -> str:
        return secrets.token(32)

    def get_verification_uri(self) -> str:
        return config.settings().endpoint("/device")

    def save_device_credential(self, client_id, scope, data) -> None:
        """Store the codes as digests. User codes are unique among all stored codes, and
        20^8 of them collide now and then once millions are stored (the birthday bound):
        on a collision a new user code is drawn, and the response (``data``) carries it.
        ``INSERT … ON CONFLICT DO NOTHING RETURNING`` tells without a savepoint."""
        now = utcnow()
        row = {
            "device_code_digest": secrets.digest(data["device_code"]),
            "client_id": client_id,
            "scope": scope or "",
            "created_at": now,
            "expires_at": now + dt.timedelta(seconds=data["expires_in"]),
            "interval": data["interval"],
            "status": "pending",
        }
        for _ in range(USER_CODE_ATTEMPTS):
            row["user_code_digest"] = user_code_digest(normalise_user_code(data["user_code"]))
            stored = db.session.execute(
                dialect_insert(db.session, DeviceCode).values(row)
                .on_conflict_do_nothing(index_elements=["user_code_digest"])
                .returning(DeviceCode.id)
            ).first()
            if stored is not None:
                return
            data["user_code"] = self.generate_user_code()
            data["verification_uri_complete"] = add_params_to_uri(
                data["verification_uri"], [("user_code", data["user_code"])])
        raise TemporarilyUnavailable("No free user code could be drawn; try again.")


# The statements of a poll, the answer kiosks get most often, built once per process
# (docs/performance.md): a statement built per request cost more CPU than its SQL.
_BY_DEVICE_CODE = (select(DeviceCode, epoch.column())
                   .where(DeviceCode.device_code_digest == bindparam("digest"))
                   .options(lazyload(DeviceCode.client)))
_table = DeviceCode.__table__
_POLLED = (update(_table).where(_table.c.id == bindparam("code_id"))
           .values(last_polled_at=bindparam("last_polled_at")))
_SLOW_DOWN = _POLLED.values(interval=_table.c.interval + SLOW_DOWN_STEP)


def _pending_poll():
    """A poll of a code still pending, answered by one statement (PostgreSQL): the row
    locked, its poll time set, its interval grown when it came too soon, and whether it
    did, in one ``UPDATE`` that changes a row only if the code is this client's, pending,
    unconsumed and unexpired, and only while the revocation epoch is the one the
    request relies on. No row back means any other case, which the grant answers
    through the session as before: unknown, foreign, expired, decided, or an epoch
    that moved. Run outside a transaction (``epoch.run_unmoved``): one round trip."""
    polled = (select(_table.c.id, _table.c.last_polled_at, _table.c.interval)
              .where(_table.c.device_code_digest == bindparam("digest"))
              .with_for_update().cte("polled"))
    now = bindparam("now", type_=_table.c.last_polled_at.type)
    too_soon = and_(polled.c.last_polled_at.is_not(None),
                    polled.c.last_polled_at > now - polled.c.interval * _ONE_SECOND)
    return (update(_table)
            .where(_table.c.id == polled.c.id, _table.c.client_id == bindparam("kiosk"),
                   _table.c.status == "pending", _table.c.consumed_at.is_(None),
                   _table.c.expires_at > now, epoch.unmoved())
            .values(last_polled_at=now, interval=case(
                (too_soon, polled.c.interval + SLOW_DOWN_STEP), else_=polled.c.interval))
            .returning(too_soon.label("too_soon")))


_ONE_SECOND = literal_column("interval '1 second'")
# Also run beneath Flask (``idp.oauth.direct``), under the epoch its cached kiosk holds.
PENDING_POLL = _pending_poll()


class DeviceCodeGrant(WithinConsent, _DeviceCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def validate_token_request(self):
        """As Authlib's, but an unknown or foreign device code is ``invalid_grant``
        (RFC 6749 §5.2), not ``invalid_request``/``unauthorized_client``."""
        device_code = self.request.payload.data.get("device_code")
        if not device_code:
            raise InvalidRequestError("Missing 'device_code' in request.")
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client is not registered for the device grant.")
        self._answer_if_pending(client, device_code)
        credential = self.query_device_credential(device_code)
        if credential is None or credential.client_id != client.id:
            raise InvalidGrantError("Invalid 'device_code'.")
        self.request.client = client
        self.request.user = self.validate_device_credential(credential)
        self.request.credential = credential

    def _answer_if_pending(self, client, device_code: str) -> None:
        """Answer a poll of a pending code with one statement (``_pending_poll``), the
        answer kiosks get most often; return to the full path for any other case."""
        if not epoch.can_run_unmoved():
            return
        found = epoch.run_unmoved(PENDING_POLL, {
            "digest": secrets.digest(device_code), "kiosk": client.id, "now": utcnow()})
        if found is None:
            return
        raise SlowDownError() if found.too_soon else AuthorizationPendingError()

    def query_device_credential(self, device_code: str) -> DeviceCode | None:
        # The client was loaded by authentication just before: no join for it
        # here (credential.client, when needed, comes from the identity map).
        # The revocation epoch rides along (idp.access.epoch): a pending poll needs
        # no read of its own to confirm the kiosk it took from the cache.
        found = db.session.execute(_BY_DEVICE_CODE,
                                   {"digest": secrets.digest(device_code)}).first()
        if found is None:
            return None
        epoch.seen(found[1])
        return found[0]

    def validate_device_credential(self, credential: DeviceCode) -> Principal:
        now = utcnow()
        if credential.consumed_at is not None:
            raise InvalidGrantError("The device code was already used.")
        if credential.is_expired(now):
            raise ExpiredTokenError()
        if credential.status == "denied":
            raise AccessDeniedError()
        if credential.status == "approved":
            return self._consume(credential, now)
        too_soon = (credential.last_polled_at is not None and
                    now - credential.last_polled_at < dt.timedelta(seconds=credential.interval))
        # One UPDATE statement on the session's connection, not a change tracked on the
        # loaded row: this is the answer kiosks get most often, so it is kept as lean as
        # possible. (The loaded row keeps its old values; nothing reads them again.)
        db.session.connection().execute(_SLOW_DOWN if too_soon else _POLLED,
                                        {"code_id": credential.id, "last_polled_at": now})
        if too_soon:
            raise SlowDownError()
        raise AuthorizationPendingError()

    def _consume(self, credential: DeviceCode, now: dt.datetime) -> Principal:
        if not claim_once(db.session, DeviceCode.consumed_at, credential.id, now):
            raise InvalidGrantError("The device code was already used.")
        resident = credential.resident
        client = credential.client
        return Principal(resident, subject_for(resident.id, client.company_id), client)

    def query_user_grant(self, user_code):  # pragma: no cover - decided in validate_*
        raise NotImplementedError

    def should_slow_down(self, credential):  # pragma: no cover - decided in validate_*
        raise NotImplementedError


def decide(row: DeviceCode, resident, approve: bool, amr: list[str] | None = None) -> None:
    """Record the resident's decision on a pending device authorization, and with an
    approval how they signed in (``amr``, RFC 8176) for the kiosk's ID token."""
    now = utcnow()
    row.status = "approved" if approve else "denied"
    row.resident_id = resident.id
    row.decided_at = now
    row.amr = list(amr) if approve and amr else None
    record(AuditTag.DEVICE_APPROVE if approve else AuditTag.DEVICE_DENY,
           resident_id=resident.id, client_id=row.client_id,
           company_id=row.client.company_id, scope=row.scope)
