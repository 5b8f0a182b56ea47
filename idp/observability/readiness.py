"""``/readyz``: may this node take traffic? Each check answers quickly and changes nothing.

- ``database``: ``SELECT 1`` on the request's session, within ``readiness_timeout_ms``
  (PostgreSQL ``statement_timeout``; a dead server fails at connect,
  ``connect_timeout``, or at the idle connection's ping); always rolled back.
- ``migrations``: the database's Alembic revision is the code's head, or a revision
  this code does not know: a newer release has migrated, and migrations are
  expand-then-contract (docs/operations.md), so the previous release's nodes keep
  serving during a rolling upgrade (``ok: schema ahead``). A schema behind the code
  (a known revision short of the head, or none) is not ready.
- ``signing_key``: a key signs ID tokens now for every algorithm that has keys
  (read only: the first key is never made here, unlike ``idp.keys.service``).
- ``redis``: PING, when ``redis_url`` is set (else ``skipped``).

Each check is ``ok``, ``skipped`` or ``failed: <reason>`` (an exception's class,
never its message: that may name hosts or users).
"""

from __future__ import annotations

import functools
from typing import Any

import redis
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy import text

from idp import config
from idp import metrics
from idp.config import ROOT
from idp.db import utcnow
from idp.extensions import db
from idp.keys.models import SigningKey

OK = "ok"
AHEAD = "ok: schema ahead"
SKIPPED = "skipped"


@functools.cache
def code_heads() -> frozenset[str]:
    """The Alembic heads of this release's migrations (read once per process)."""
    return frozenset(ScriptDirectory(str(ROOT / "migrations")).get_heads())


@functools.cache
def _redis_client(url: str, timeout_ms: int) -> redis.Redis:
    seconds = timeout_ms / 1000
    return redis.Redis.from_url(url, socket_timeout=seconds, socket_connect_timeout=seconds,
                                retry_on_timeout=False)


def _failed(reason: str) -> str:
    return f"failed: {reason}"


def _database_checks(timeout_ms: int) -> dict[str, str]:
    checks = {"database": _failed("not reached"), "migrations": _failed("not reached"),
              "signing_key": _failed("not reached")}
    try:
        connection = db.session.connection()
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
        connection.execute(text("SELECT 1"))
        checks["database"] = OK
        checks["migrations"] = _migrations(connection)
        checks["signing_key"] = _signing_key(connection)
    except Exception as exc:  # noqa: BLE001 - reported as the failed check
        reason = _failed(type(exc).__name__)
        for name, value in checks.items():
            if value.startswith("failed: not reached"):
                checks[name] = reason
    finally:
        # Nothing was written; the transaction (and its statement_timeout) ends here.
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; nothing to roll back
            db.session.close()
    return checks


def _migrations(connection: Any) -> str:
    try:
        with connection.begin_nested():
            found = set(connection.execute(
                text("SELECT version_num FROM alembic_version")).scalars())
    except Exception:  # noqa: BLE001 - no alembic_version table: never migrated
        return _failed("not migrated")
    if found == set(code_heads()):
        return OK
    known = _known_revisions()
    if found and not (found & known):
        return AHEAD
    return _failed("database revision is behind the code's head")


@functools.cache
def _known_revisions() -> frozenset[str]:
    """Every revision of this release's migrations (read once per process)."""
    return frozenset(r.revision for r in ScriptDirectory(str(ROOT / "migrations")).walk_revisions())


def _signing_key(connection: Any) -> str:
    now = utcnow()
    rows = connection.execute(select(SigningKey.alg, SigningKey.activates_at,
                                     SigningKey.retired_at)).all()
    if not rows:
        return _failed("no signing key")
    active = {alg for alg, activates_at, retired_at in rows
              if activates_at <= now and (retired_at is None or retired_at > now)}
    missing = {alg for alg, _, _ in rows} - active
    if missing:
        return _failed("no active key for " + ", ".join(sorted(missing)))
    return OK


def _redis(url: str, timeout_ms: int) -> str:
    if not url:
        return SKIPPED
    try:
        _redis_client(url, timeout_ms).ping()
    except Exception as exc:  # noqa: BLE001 - reported as the failed check
        return _failed(type(exc).__name__)
    return OK


def checks() -> dict[str, str]:
    """Every check's result; the node is ready when none failed."""
    settings = config.settings()
    results = _database_checks(settings.readiness_timeout_ms)
    results["redis"] = _redis(settings.redis_url, settings.readiness_timeout_ms)
    for name, value in results.items():
        if value != SKIPPED:
            metrics.READY.labels(check=name).set(1 if value in (OK, AHEAD) else 0)
    return results


def ready(results: dict[str, str]) -> bool:
    return all(value in (OK, AHEAD, SKIPPED) for value in results.values())
