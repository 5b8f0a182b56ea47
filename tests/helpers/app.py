"""The test app's settings and what tests do around its requests and its database."""

from __future__ import annotations

import contextvars
import os

from flask.testing import FlaskClient
from sqlalchemy import text

from idp.extensions import db

PG_URL = os.environ.get("IDP_TEST_DATABASE_URL")

TEST_SETTINGS = {
    "environment": "test",
    "issuer": "http://localhost",
    "argon2_time_cost": 1,
    "argon2_memory_cost": 1024,
    "argon2_parallelism": 1,
    "key_publish_delay": 3600,
    "log_level": "WARNING",
    # Queued messages (logout tokens, security events, mail) are delivered at the end of
    # the request that queued them, after its transaction has ended, so a test
    # sees them delivered when the request returns. Messages queued outside a
    # request (a service called from the test) wait for ``flush_outbox()``.
    "outbox_delivery": "inline",
}


class IsolatedClient(FlaskClient):
    """A test client whose requests run outside the test's app context.

    The ``app`` fixture keeps an app context pushed so tests can use the
    database directly; Flask would reuse it (and its ``g``) for every request,
    which no real request does. Each request here starts from an empty
    ``contextvars.Context`` instead. The test's own session ends its
    transaction first (tests commit what a request must see), which also
    releases SQLite's write lock (``idp.db`` begins transactions IMMEDIATE),
    and afterwards it reads what the request committed.
    """

    def open(self, *args, **kwargs):
        db.session.rollback()
        return contextvars.Context().run(super().open, *args, **kwargs)


def flush_outbox() -> list[dict]:
    """Deliver every due outbox message now (``idp.outbox.service.deliver_due``), as
    ``idp worker --once`` would: the test's transaction ends first."""
    from idp.outbox import service as outbox

    db.session.commit()
    results = []
    while batch := outbox.deliver_due():
        results.extend(batch)
    return results


def count(model) -> int:
    return db.session.scalar(text(f"SELECT count(*) FROM {model.__tablename__}"))  # noqa: S608
