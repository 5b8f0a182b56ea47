"""Signing keys: which one signs, which ones JWKS publishes, and rotation.

Rotation publishes the new key at once but lets it sign only after
``key_publish_delay`` (relying parties refresh their JWKS caches first). The
keys it replaces stop signing at that moment and stay in JWKS until every ID
token they signed has expired (dex keeps ``VerificationKeys`` with an expiry
for the same reason).
"""

from __future__ import annotations

import datetime as dt
import weakref
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask import g
from flask import has_app_context
from flask import has_request_context
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select

from idp import config
from idp.access import epoch
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db
from idp.keys import crypto
from idp.keys.models import KeyState
from idp.keys.models import SigningKey
from idp.security.algorithms import SIGNING_ALGS

# Clock-skew allowance for relying parties validating ID tokens.
VERIFY_LEEWAY = dt.timedelta(minutes=5)

_private_keys: dict[str, Any] = {}

# The JWKS document is kept per app for a few seconds: every relying party and
# resource server fetches it, and rebuilding it meant two queries per request.
# Any key change made in this process (rotate, retire, the on-demand first
# key) forgets it at once; another node sees the change within this time,
# while relying parties cache the document for jwks_cache_max_age anyway and a
# rotated-in key is published key_publish_delay before it signs.
JWKS_CACHE_TTL = dt.timedelta(seconds=5)
_jwks_documents: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forget_jwks_cache() -> None:
    """Drop this process's JWKS documents, and the app's signing schedule (every key
    change calls it; every other app's and process's schedule follows the revocation
    epoch, which the change bumps). Outside an app, every schedule."""
    _jwks_documents.clear()
    if has_app_context():
        _schedules.pop(current_app._get_current_object(), None)
    else:
        _schedules.clear()


def _generate(alg: str, activates_at: dt.datetime) -> SigningKey:
    if alg == "RS256":
        key = RSAKey.generate_key(2048, private=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", private=True)
    else:
        raise ValueError(f"unsupported algorithm {alg}")
    kid = key.thumbprint()
    params = {"kid": kid, "alg": alg, "use": "sig"}
    return SigningKey(
        kid=kid,
        alg=alg,
        private_jwk_sealed=crypto.seal(key.as_dict(private=True, **params)),
        public_jwk=key.as_dict(private=False, **params),
        activates_at=activates_at,
    )


def rotate(immediately: bool = False, drop_old: bool = False,
           actor: str | None = None) -> list[SigningKey]:
    """Add a new key per algorithm; return them.

    With ``immediately`` the new keys sign at once; otherwise they sign after
    ``key_publish_delay``. Every older key stops signing when the new one
    starts and stays in JWKS until the ID tokens it signed have expired —
    unless ``drop_old`` (a compromised key): then the older keys leave JWKS at
    once and tokens they signed no longer verify.
    """
    settings = config.settings()
    now = utcnow()
    if drop_old:
        immediately = True
    activates_at = now if immediately else now + dt.timedelta(seconds=settings.key_publish_delay)
    verify_until = activates_at + dt.timedelta(seconds=settings.id_token_ttl) + VERIFY_LEEWAY
    if drop_old:
        verify_until = now
    created = []
    for alg in SIGNING_ALGS:
        for old in db.session.scalars(
            select(SigningKey).where(
                SigningKey.alg == alg,
                or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > activates_at),
            )
        ):
            old.retired_at = activates_at
            old.verify_until = verify_until
        key = _generate(alg, activates_at)
        db.session.add(key)
        created.append(key)
    db.session.flush()
    forget_jwks_cache()
    epoch.bump("key_rotated")  # every node's schedule (``_scheduled``) is read again
    record(AuditTag.KEY_ROTATE, actor=actor, kids=[k.kid for k in created],
           activates_at=activates_at.isoformat(), immediately=immediately, drop_old=drop_old)
    return created


class SigningKeyError(ValueError):
    """A key operation was refused; the message says why."""


def retire(kid: str, drop: bool = False, actor: str | None = None) -> SigningKey | None:
    """Stop signing with one key now; returns the key that signs with its algorithm
    instead (None when the retired key was not signing).

    The retired key stays in JWKS until the ID tokens it signed have expired
    (``id_token_ttl`` + leeway), unless ``drop`` (a compromised key): then it
    leaves JWKS at once and its tokens stop verifying. A key that never signed
    (still only published) leaves JWKS at once anyway. If no key of that
    algorithm is left to sign, a new one is made that signs at once.
    """
    key = db.session.get(SigningKey, kid) if isinstance(kid, str) and len(kid) <= 64 else None
    if key is None:
        raise SigningKeyError(f"no signing key {kid}")
    now = utcnow()
    state = key.state(now)
    if state == KeyState.EXPIRED:
        raise SigningKeyError(f"key {kid} is already out of JWKS")
    if state == KeyState.RETIRED and not drop:
        raise SigningKeyError(f"key {kid} is already retired")
    if state != KeyState.RETIRED:
        key.retired_at = now
    if drop or state == KeyState.PUBLISHED:
        key.verify_until = now
    else:
        key.verify_until = (now + dt.timedelta(seconds=config.settings().id_token_ttl)
                            + VERIFY_LEEWAY)
    db.session.flush()
    forget_jwks_cache()
    epoch.bump("key_retired")
    replacement = None
    if state == KeyState.ACTIVE:
        if has_request_context():
            g.pop("idp_signing_keys", None)  # this request must not sign with it either
        replacement = _signing_key_now(key.alg)
    record(AuditTag.KEY_RETIRE, actor=actor, kid=kid, alg=key.alg, previous_state=str(state),
           drop=drop, replacement=replacement.kid if replacement is not None else None)
    return replacement


def signing_key(alg: str) -> SigningKey | KeyInUse:
    """The key that signs with ``alg`` for the rest of this request.

    Chosen once per request, so an ID token's ``kid`` header and its signature
    always come from the same key even if a rotated key activates meanwhile.
    """
    if not has_request_context():
        return _signing_key_now(alg)
    chosen = g.setdefault("idp_signing_keys", {})
    if alg not in chosen:
        chosen[alg] = _signing_key_now(alg)
    return chosen[alg]


@dataclass(frozen=True)
class KeyInUse:
    """What signing needs of a key, kept in process (``_scheduled``): the columns of a
    ``SigningKey`` that ``private_key`` and a JWS header read, and when it signs."""

    kid: str
    alg: str
    private_jwk_sealed: str
    activates_at: dt.datetime
    retired_at: dt.datetime | None


# The keys that sign or will sign, per app (that is, per database) and algorithm, with
# the revocation epoch read in the same statement: every change to which key signs
# when (a rotation, a retirement) bumps the epoch, so the schedule is trusted exactly
# as the client cache is (``idp.access.epoch``). It was a statement per ID token.
_UNREAD = object()
_schedules: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_KEY = SigningKey.__table__.c
_SCHEDULE = (select(_KEY.kid, _KEY.alg, _KEY.private_jwk_sealed, _KEY.activates_at,
                    _KEY.retired_at, epoch.column())
             .where(_KEY.alg == bindparam("alg"), _KEY.retired_at.is_(None)
                    | (_KEY.retired_at > bindparam("now"))))


def _scheduled(alg: str, now: dt.datetime) -> KeyInUse | None:
    """The key of ``alg`` that signs at ``now``, by the schedule kept in process; read
    again when the epoch moved or the schedule names no key for ``now`` (one made since
    on another node). None when no key signs (the caller makes the first)."""
    app = current_app._get_current_object()
    cached = _schedules.get(app, {}).get(alg)
    if cached is not None and epoch.expected(cached[0], _UNREAD) == cached[0]:
        key = _signing_at(cached[1], now)
        if key is not None:
            return key
    rows = db.session.execute(_SCHEDULE, {"alg": alg, "now": now}).all()
    keys = tuple(KeyInUse(*row[:-1]) for row in rows)
    if rows:  # never kept empty: the first key is made, and kept from then on
        epoch.seen(rows[0][-1])
        _schedules.setdefault(app, {})[alg] = (rows[0][-1], keys)
    return _signing_at(keys, now)


def _signing_at(keys: tuple[KeyInUse, ...], now: dt.datetime) -> KeyInUse | None:
    """Of ``keys``, the one that signs at ``now``: the latest activated, not retired."""
    signing = [k for k in keys if k.activates_at <= now
               and (k.retired_at is None or k.retired_at > now)]
    return max(signing, key=lambda k: k.activates_at, default=None)


def _signing_key_now(alg: str) -> SigningKey | KeyInUse:
    """The key that signs with ``alg`` now; the very first one is made on demand."""
    if alg not in SIGNING_ALGS:
        raise ValueError(f"unsupported algorithm {alg}")
    now = utcnow()
    key = _scheduled(alg, now)
    if key is None:
        key = _generate(alg, now)
        # A rotation may already be pending for this algorithm: this stop-gap
        # key then retires when the pending key activates, as rotate() would
        # have retired any key active at that time.
        pending = db.session.scalar(
            select(func.min(SigningKey.activates_at))
            .where(SigningKey.alg == alg, SigningKey.activates_at > now)
        )
        if pending is not None:
            key.retired_at = pending
            key.verify_until = pending + dt.timedelta(seconds=config.settings().id_token_ttl) \
                + VERIFY_LEEWAY
        db.session.add(key)
        db.session.flush()
        forget_jwks_cache()  # (and this app's schedule, read again with the new key)
    return key


def private_key(key: SigningKey | KeyInUse) -> Any:
    """The joserfc key object; cached per kid, since a kid's key never changes."""
    cached = _private_keys.get(key.kid)
    if cached is None:
        cls = RSAKey if key.alg == "RS256" else ECKey
        cached = _private_keys[key.kid] = cls.import_key(crypto.unseal(key.private_jwk_sealed))
    return cached


def published(now: dt.datetime | None = None) -> list[SigningKey]:
    """Keys in JWKS: pending, active and retired ones whose tokens may still be live."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(SigningKey)
            .where(or_(SigningKey.verify_until.is_(None), SigningKey.verify_until > now))
            .order_by(SigningKey.created_at)
        )
    )


def ensure_keys() -> None:
    """Make the first key of each algorithm if none exists yet (a fresh install)."""
    have = set(db.session.scalars(select(SigningKey.alg).distinct()))
    for alg in SIGNING_ALGS:
        if alg not in have:
            _signing_key_now(alg)


def jwks() -> dict[str, list[dict[str, Any]]]:
    return {"keys": [dict(k.public_jwk) for k in published()]}


def verification_keys() -> KeySet:
    """The published keys as a key set to verify our own tokens with (an ID token hint).

    Empty before the first key exists: joserfc's ``KeySet.import_key_set`` raises
    ``MissingKeyError`` for an empty set (outside its callers' ``JoseError`` handling),
    while an empty ``KeySet`` verifies nothing, so a token is just refused.
    """
    return KeySet([cls.import_key(dict(k.public_jwk))
                   for k in published() for cls in [RSAKey if k.alg == "RS256" else ECKey]])


def jwks_document() -> dict[str, list[dict[str, Any]]]:
    """The JWKS endpoint's document (the first keys made if there are none yet),
    reused for up to ``JWKS_CACHE_TTL`` and never past a key's ``verify_until``."""
    app = current_app._get_current_object()
    now = utcnow()
    cached = _jwks_documents.get(app)
    if cached is not None and now < cached[0]:
        return cached[1]
    ensure_keys()
    rows = published(now)
    expires = min([now + JWKS_CACHE_TTL] + [k.verify_until for k in rows if k.verify_until])
    document = {"keys": [dict(k.public_jwk) for k in rows]}
    _jwks_documents[app] = (expires, document)
    return document


def describe(now: dt.datetime | None = None) -> list[dict[str, Any]]:
    now = now or utcnow()
    rows = db.session.scalars(select(SigningKey).order_by(SigningKey.created_at))
    return [
        {
            "kid": k.kid,
            "alg": k.alg,
            "state": str(k.state(now)),
            "activates_at": k.activates_at.isoformat(),
            "retired_at": k.retired_at.isoformat() if k.retired_at else None,
            "verify_until": k.verify_until.isoformat() if k.verify_until else None,
        }
        for k in rows
    ]


__all__ = ["KeyState", "describe", "jwks", "jwks_document", "private_key", "published", "rotate",
           "signing_key"]
