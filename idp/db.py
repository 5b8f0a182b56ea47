"""Declarative base, naming convention and column types shared by every model."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Annotated
from typing import Any

from psycopg.pq import TransactionStatus
from sqlalchemy import JSON
from sqlalchemy import DateTime
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import TypeDecorator
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import registry

# Stable constraint names so Alembic autogenerate and `alembic check` agree on
# every backend (SQLite names nothing by default).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def dialect_insert(session: Any, table: Any) -> Any:
    """``INSERT`` for the session's backend, with ``on_conflict_do_nothing`` (PostgreSQL and
    SQLite both have ``ON CONFLICT``; the generic construct does not offer it)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def delete_where(session: Any, model: Any, condition: Any) -> int:
    """Bulk ``DELETE`` of the rows matching ``condition``; the number deleted. Objects of
    ``model`` already in the session are not synchronised (callers delete whole rows
    they no longer read)."""
    return session.execute(
        delete(model).where(condition).execution_options(synchronize_session=False)
    ).rowcount


def claim_once(session: Any, column: Any, row_id: Any, value: Any, *conditions: Any) -> bool:
    """Set a single-use row's ``column`` from NULL to ``value`` in one ``UPDATE … WHERE
    column IS NULL`` (and ``conditions``): True for the one caller that did. The statement
    takes the row lock on PostgreSQL, so a concurrent or replayed second claim waits, then
    finds the row taken."""
    model = column.class_
    return session.execute(
        update(model).where(model.id == row_id, column.is_(None), *conditions)
        .values({column.key: value})
    ).rowcount == 1


def run_alone(session: Any, statement: Any, params: dict[str, Any]) -> Any:
    """The first row of ``statement``, run and committed by itself when ``session`` holds
    no connection yet: one round trip on a connection in autocommit
    (``AutocommitConnections``), where the session would have sent BEGIN, the statement
    and COMMIT. In the session's transaction when it holds one, or when it is bound to a
    connection (the tests' sessions): the statement then commits with the request. For a
    statement that is the request's only statement, or its only write and one that must
    not wait for anything else. On SQLite (development) always in the session's
    transaction: every transaction there begins IMMEDIATE (``install_sqlite_handling``),
    and a kept connection would hold the write lock."""
    bind = session.get_bind()
    if holds_transaction(session) or bind.dialect.name != "postgresql":
        return session.connection().execute(statement, params).first()
    with AutocommitConnections.of(bind).connection() as connection:
        return connection.execute(statement, params).first()


class AutocommitConnections:
    """Connections of ``engine`` in autocommit, kept open between the statements that run
    alone (``run_alone``), one per statement running at a time.

    Checking a connection out of the pool, setting it to autocommit, and resetting and
    returning it afterwards was a sixth of a client-credentials token's CPU and, with the
    ORM session around it, a quarter of an introspection's (docs/performance.md), for one
    statement. These are checked out of the pool once and set to autocommit once; a
    statement takes one from the idle ones (or opens one) and gives it back. Nothing is
    left between statements: each commits by itself, so a connection carries no
    transaction from one request to the next.

    A connection whose statement failed is closed, not kept (the next one is checked out
    afresh from the pool). One that sat idle longer than ``PING_AFTER_IDLE_S`` is pinged
    before it is used, as the pool pings its own, and dropped if the ping fails. At most
    ``keep`` idle connections are kept: half the pool's size (``idp.create_app`` sizes it
    to two connections per thread, one for the request the thread serves, one kept for
    the statements it runs alone), so that the pool's overflow still means requests wait
    on the database (docs/operations.md). Disposing of the engine closes them.
    """

    _ATTRIBUTE = "_idp_autocommit_connections"  # on the engine: they live and go together
    _lock = threading.Lock()

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        size = getattr(engine.pool, "size", None)
        self.keep = max(1, size() // 2) if callable(size) else 1
        self._idle: list[tuple[Any, float]] = []
        self._generation = 0
        event.listen(engine, "engine_disposed", self._disposed)

    @classmethod
    def of(cls, engine: Engine) -> AutocommitConnections:
        found = getattr(engine, cls._ATTRIBUTE, None)
        if found is None:
            with cls._lock:
                found = getattr(engine, cls._ATTRIBUTE, None)
                if found is None:
                    found = cls(engine)
                    setattr(engine, cls._ATTRIBUTE, found)
        return found

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        connection = self._take()
        generation = self._generation
        try:
            yield connection
        except BaseException:
            connection.close()
            raise
        if generation != self._generation:  # the engine was disposed of meanwhile
            connection.invalidate()
            connection.close()
        elif len(self._idle) >= self.keep:
            connection.close()
        else:
            self._idle.append((connection, time.monotonic()))

    def _take(self) -> Any:
        while True:
            try:
                connection, since = self._idle.pop()
            except IndexError:
                break
            if time.monotonic() - since < PING_AFTER_IDLE_S or self._alive(connection):
                return connection
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _alive(self, connection: Any) -> bool:
        """Ping a connection that sat idle, as the pool does (``ping_idle_connections``);
        one that fails is invalidated and closed."""
        try:
            self.engine.dialect.do_ping(connection.connection.dbapi_connection)
        except Exception:
            connection.invalidate()
            connection.close()
            return False
        return True

    def _disposed(self, engine: Any) -> None:
        """Close the kept connections for good (given back, they would join the pool the
        engine just left, open)."""
        self._generation += 1
        while self._idle:
            connection = self._idle.pop()[0]
            connection.invalidate()
            connection.close()


def holds_transaction(session: Any) -> bool:
    """Whether the session's statements run in a transaction it already holds: it holds
    a connection, or is bound to one (the tests' sessions)."""
    return bool(session.info.get(_CONNECTED)) or not isinstance(session.get_bind(), Engine)


def reads_first(session: Any) -> None:
    """The session's unit of work reads first and may write later (PostgreSQL): when it
    holds no connection yet, its statements run in autocommit, each a consistent
    snapshot of its own as in a READ COMMITTED transaction, until the first statement
    that writes or locks (anything but a plain ``SELECT``); that one is preceded by a
    ``BEGIN``, and everything from it on is one transaction, committed or rolled back
    with the request as always. A request that only reads sends one round trip per
    statement instead of BEGIN, the statements and COMMIT."""
    if holds_transaction(session) or session.get_bind().dialect.name != "postgresql":
        return
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT", _READS_FIRST: True})


def insert_new(session: Any, plain: Any, skipping: Any, params: dict[str, Any],
               constraint: str) -> int:
    """The rows a batch INSERT adds whose rows may already be there (a retried batch):
    ``plain`` is the INSERT, ``skipping`` the same with ``ON CONFLICT (…) DO NOTHING``
    on the unique ``constraint``; both end up adding the rows that are not there yet.

    ``ON CONFLICT`` costs every row a look into the unique index before it is inserted
    (PostgreSQL's speculative insertion), a tenth of the database's part of a batch of
    touches (docs/performance.md); a plain INSERT checks uniqueness while
    it inserts. So on PostgreSQL, when the INSERT is the unit of work's first write
    (``reads_first``: the transaction begins with it), ``plain`` runs first, and only a
    batch that meets a row already there (the constraint's unique violation, which also
    waits for a concurrent batch with the same rows to commit or roll back) is rolled
    back, which undoes nothing else, and run again as ``skipping``. Anywhere else
    (SQLite, a transaction that has written already) ``skipping`` runs at once."""
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    if connection.dialect.name != "postgresql" \
            or not connection.get_execution_options().get(_READS_FIRST) \
            or raw.info.transaction_status != _IDLE:
        return connection.execute(skipping, params).rowcount
    try:
        return connection.execute(plain, params).rowcount
    except sa_exc.IntegrityError as error:
        if getattr(getattr(error.orig, "diag", None), "constraint_name", None) != constraint:
            raise
        raw.rollback()  # the BEGIN sent before the INSERT, and the INSERT
    return connection.execute(skipping, params).rowcount


_READS_FIRST = "idp_reads_first"
_IDLE = TransactionStatus.IDLE
# A statement that neither writes nor locks: a SELECT without a locking clause, and
# none of PostgreSQL's functions that act on the transaction (advisory locks, NOTIFY,
# sequences, settings).
_READS_ONLY = re.compile(
    r"\s*SELECT\b(?!.*\bFOR\s+(?:UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b)"
    r"(?!.*\b(?:pg_advisory\w*|pg_notify|nextval|setval|set_config)\s*\()",
    re.IGNORECASE | re.DOTALL)


@event.listens_for(Engine, "before_cursor_execute")
def _begin_before_writing(conn: Any, cursor: Any, statement: str, parameters: Any,
                          context: Any, executemany: bool) -> None:
    """``reads_first``: BEGIN before the first statement that writes or locks."""
    if not conn.get_execution_options().get(_READS_FIRST):
        return
    if cursor.connection.info.transaction_status != _IDLE or reads_only(statement):
        return
    cursor.execute("BEGIN")


@functools.lru_cache(maxsize=2048)
def reads_only(statement: str) -> bool:
    """Whether ``statement`` neither writes nor locks (``_READS_ONLY``). Kept per statement
    text: the hot paths' statements are constants, and searching a token lookup's 2 kB
    for locking clauses on every request was 5 % of an introspection's CPU."""
    return _READS_ONLY.match(statement) is not None


_CONNECTED = "idp_connected"


@event.listens_for(Session, "after_begin")
def _began(session: Any, transaction: Any, connection: Any) -> None:
    """Note that the session's transaction holds a connection (``run_alone``)."""
    session.info[_CONNECTED] = True


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Any, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_CONNECTED, None)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend.

    SQLite stores naive values; PostgreSQL stores timestamptz. Either way the
    application only ever sees aware UTC datetimes, and refuses naive input.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    # One registry carrying both the metadata and the type map, so that
    # Flask-SQLAlchemy's subclass of this base inherits them unchanged.
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={
            dt.datetime: UTCDateTime(),
            dict[str, Any]: JSON(),
            list[str]: JSON(),
        },
    )


# Annotated column aliases (warehouse utils/db/types.py style).
created_at = Annotated[dt.datetime, mapped_column(default=utcnow)]
str40 = Annotated[str, mapped_column(String(40))]
str64 = Annotated[str, mapped_column(String(64))]
str255 = Annotated[str, mapped_column(String(255))]


def init_app(app: Any) -> None:
    """Called by ``create_app``: the SQLite handling below."""
    install_sqlite_handling()


# A pooled connection that sat idle longer than this is pinged when it is checked
# out; one in steady use is not (see ping_idle_connections).
PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "idp_idle_since"


def ping_idle_connections(engine: Engine) -> None:
    """Check a pooled PostgreSQL connection at checkout only if it sat idle in the pool.

    SQLAlchemy's ``pool_pre_ping`` pings every checkout: a round trip and about 2 % of a
    token request's CPU, spent on connections a busy worker used a millisecond ago. A
    connection is lost to a database restart or a failover while nobody uses it, so only
    a connection idle for more than ``PING_AFTER_IDLE_S`` is pinged. One that dies while
    in steady use fails its next statement instead: SQLAlchemy sees the disconnect and
    invalidates every pooled connection opened before it, and that request is answered
    503 with Retry-After (idp.errors), like any other while the database is away.
    A failed ping invalidates the pool and the checkout reconnects, as pre-ping does.
    """
    if engine.dialect.name != "postgresql":
        return
    dialect = engine.dialect

    def checkin(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise sa_exc.InvalidatePoolError(str(exc)) from exc
            raise

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def install_sqlite_handling() -> None:
    """SQLite (development, tests, the demo): let SQLAlchemy, not pysqlite, open
    transactions, and open them with BEGIN IMMEDIATE. A deferred transaction that
    reads and then writes can fail at once with "database is locked" when another
    writer is active (SQLite cannot wait for a read lock to upgrade); taking the
    write lock up front makes concurrent requests queue on the busy timeout
    instead. PostgreSQL is untouched.

    Process-wide (every ``Engine``, also Alembic's in ``migrations/env.py``,
    which calls this too), installed once however many apps a process creates.
    """
    for name, listener in (("connect", _sqlite_connect), ("begin", _sqlite_begin)):
        if not event.contains(Engine, name, listener):
            event.listen(Engine, name, listener)


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL's recommended durability: a commit is not synced to disk by itself, only
        # the checkpoints are. The database stays consistent after a crash; a power
        # loss may lose the last commits. SQLite is for development and the demo
        # (docs/deployment.md); with FULL, each commit waited for an fsync while
        # holding the one write lock, and token requests queued behind it.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _sqlite_begin(connection: Any) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
