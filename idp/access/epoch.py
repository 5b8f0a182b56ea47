"""The revocation epoch: what lets a node keep clients, companies and keys in process
and still refuse a cut-off on the very next request, on every node.

Every change to state that nodes keep in process (a client revoked, edited or given
a new secret; a company suspended, reinstated or revoked; a signing key rotated or retired; a
data-use contract ended) calls :func:`bump` **in the transaction of the change**: one
row, ``revocation_epoch``, gets a new random value, visible to other connections
exactly when the change is. A request that relies on cached state first reads the
value (:func:`current`, one primary-key read, once per request) and the cache drops
everything it holds when the value differs from the one its entries were read with
(``idp.clients.cache``). So a request either reads the value from before the commit
of a cut-off (it is then ordered before the cut-off, exactly as if it had read the
client itself a moment earlier) or the new one, and then reads the client again.

On PostgreSQL the bump also sends ``NOTIFY idp_revocation_epoch`` (delivered at
commit): each worker's listener (``idp.clients.cache.Listener``) then empties its
cache at once, so the first request after a cut-off does not pay the reload. The
notification is only that: without it (SQLite, a lost connection, no listener)
the value read by every request keeps every node correct.
"""

from __future__ import annotations

import secrets

from flask import g
from flask import has_request_context
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select

from idp.access.models import RevocationEpoch
from idp.db import dialect_insert
from idp.db import run_alone
from idp.extensions import db

CHANNEL = "idp_revocation_epoch"
ROW = 1
_SEEN = "idp_revocation_epoch"
_ASSUMED = "idp_revocation_epoch_assumed"
_DEFERRED = "idp_revocation_epoch_deferred"
_BUMPED = "idp_revocation_epoch_bumped"
_table = RevocationEpoch.__table__

# One constant statement: compiled once by SQLAlchemy, prepared by psycopg after
# a few uses on each connection (prepare_threshold).
READ = select(_table.c.value).where(_table.c.id == ROW)


def column():
    """The epoch as a scalar subquery, to ride along in a statement a request runs anyway."""
    return READ.scalar_subquery()


def current() -> int | None:
    """The epoch now (None before the first bump), read once per request."""
    if has_request_context() and _SEEN in g:
        return g.get(_SEEN)
    value = db.session.execute(READ).scalar()
    if has_request_context():
        setattr(g, _SEEN, value)
    return value


def seen(value: int | None) -> None:
    """Note the epoch a statement of this request read along (``column()``); the
    first one read is the request's."""
    if has_request_context() and _SEEN not in g:
        setattr(g, _SEEN, value)


def defer() -> None:
    """The view promises to call :func:`confirmed` before it answers: cached state may
    be used on the assumption that the epoch has not moved, and the statements the
    request runs anyway read the epoch along (``column()``) instead of a read first."""
    setattr(g, _DEFERRED, True)


def expected(cached: object, unread: object) -> object:
    """The epoch value cache entries must carry for this request: the one it read; else,
    in a deferred request, the cache's own (``cached``; assumed, to be confirmed); else
    the one read now. ``unread`` is the cache's value for "never filled"."""
    if has_request_context():
        if _SEEN in g:
            return g.get(_SEEN)
        if g.get(_DEFERRED) and cached is not unread:
            return g.setdefault(_ASSUMED, cached)
    return current()


def _relied_on() -> tuple[bool, object]:
    """``(True, value)`` with the epoch value this request's answer relies on so far: the
    one it read, else the one it assumed (a deferred request answering from the cache);
    ``(False, None)`` when it relies on none yet."""
    if has_request_context():
        for name in (_SEEN, _ASSUMED):
            if name in g:
                return True, g.get(name)
    return False, None


def unmoved():
    """The condition of a statement run by :func:`run_unmoved`: the epoch still has the
    value the request relies on (bound as ``epoch``)."""
    return column().is_not_distinct_from(bindparam("epoch"))


def can_run_unmoved() -> bool:
    """Whether :func:`run_unmoved` may run here: PostgreSQL, in a request that relies on an
    epoch value. Its callers check first (and once)."""
    return _relied_on()[0] and db.session.get_bind().dialect.name == "postgresql"


def run_unmoved(statement, params: dict):
    """The first row of ``statement`` (a write carrying :func:`unmoved`), run and committed
    by itself (``idp.db.run_alone``) under the epoch value this request relies on, where
    :func:`can_run_unmoved`: a write that cannot be rolled back when the epoch turns out
    to have moved carries the check in its own condition. None, with nothing written,
    when the epoch moved: the caller then takes its ordinary path, where the move is
    noticed as always. A row back means the statement wrote, so the epoch still had that
    value: it is noted as :func:`seen`."""
    value = _relied_on()[1]
    found = run_under(statement, params, value)
    if found is not None:
        seen(value)
    return found


def run_under(statement, params: dict, value):
    """:func:`run_unmoved` under an epoch ``value`` the caller names (outside a Flask
    request: ``idp.oauth.direct``, whose cached client was read under ``value``)."""
    return run_alone(db.session(), statement, {**params, "epoch": value})


def confirmed() -> bool:
    """True unless the request used cached state under an epoch value that is not the
    one it read (then the view must answer again, with the cache emptied). A request
    that read no epoch along its statements reads it here."""
    if _ASSUMED not in g:
        return True
    return current() == g.get(_ASSUMED)


def restart() -> None:
    """Forget what this request read and assumed (before it is answered again)."""
    for name in (_SEEN, _ASSUMED, _DEFERRED):
        g.pop(name, None)


def bump(reason: str) -> int:
    """Give the epoch a new value in the caller's transaction; returns it.

    ``reason`` names the cut-off in the notification (for logs; listeners only
    empty their caches)."""
    session = db.session()
    transaction = session.get_transaction()
    bumped = session.info.get(_BUMPED)
    if transaction is not None and bumped is not None and bumped[0] is transaction:
        return bumped[1]  # once per transaction is enough (a company's clients, one by one)
    value = secrets.randbits(62) + 1
    session.execute(
        dialect_insert(session, _table).values(id=ROW, value=value)
        .on_conflict_do_update(index_elements=["id"], set_={"value": value}))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL, f"{value} {reason}"[:200])))
    session.info[_BUMPED] = (session.get_transaction(), value)
    if has_request_context():
        setattr(g, _SEEN, value)
    return value
