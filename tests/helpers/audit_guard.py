"""Lifting the audit trail's database guard, for tests only.

The append-only triggers (``idp.audit.guard``) refuse UPDATE and DELETE on
``audit_events`` — also the test harness's own cleanup and the tampering the
chain tests simulate. ``lifted(connection)`` drops the triggers on that
connection's transaction and creates them again before it ends: what an
attacker with DDL rights (or a superuser) could do, and exactly what the
hash chain is there to catch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

from idp.audit import guard


@contextmanager
def lifted(connection: Connection) -> Iterator[Connection]:
    guard.remove(connection)
    try:
        yield connection
    finally:
        guard.install(connection)
