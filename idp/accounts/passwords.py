"""argon2id password hashing; the only module that imports argon2.

Each hash holds ``argon2_memory_cost`` (64 MiB by default) for its whole run, and runs its
lanes on several cores. At most ``argon2_concurrency`` run at once in a process; the rest
wait their turn. Sixteen sign-ins at once in one worker otherwise held 1 GiB and had the
hashes evict each other from the caches: each took more CPU, and a burst of sign-ins
doubled a worker's memory (docs/performance.md)."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2 import Type
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from flask import current_app

from idp import config

_hashers: dict[tuple[int, int, int], PasswordHasher] = {}


def _hasher() -> PasswordHasher:
    settings = config.settings()
    key = (settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism)
    if key not in _hashers:
        _hashers[key] = PasswordHasher(
            time_cost=key[0], memory_cost=key[1], parallelism=key[2], type=Type.ID
        )
    return _hashers[key]


_turns: dict[int, threading.BoundedSemaphore] = {}
_turns_guard = threading.Lock()


@contextmanager
def _turn():
    """One of the ``argon2_concurrency`` places for a hash in this process."""
    places = config.settings().argon2_concurrency
    gate = _turns.get(places)
    if gate is None:
        with _turns_guard:
            gate = _turns.setdefault(places, threading.BoundedSemaphore(places))
    with gate:
        yield


def hash_password(password: str) -> str:
    with _turn():
        return _hasher().hash(password)


def verify(password_hash: str, password: str) -> bool:
    try:
        with _turn():
            return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the stored hash used other parameters than the current settings."""
    return _hasher().check_needs_rehash(password_hash)


def burn_time(password: str) -> None:
    """Spend one verification's worth of time, so unknown accounts answer as slowly."""
    verify(_dummy_hash(), password)


def _dummy_hash() -> str:
    hasher = _hasher()
    cache = current_app.extensions.setdefault("idp.dummy_hash", {})
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in cache:
        cache[key] = hasher.hash("machi-id-dummy-password")
    return cache[key]
