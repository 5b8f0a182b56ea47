"""Clients and their companies, kept in process per app (that is, per worker) and
trusted only while the revocation epoch has not moved (``idp.access.epoch``).

Client authentication reads the client on every protocol request; read from the
database that was the widest row of the request (docs/performance.md). Every change
to a client or a company bumps the epoch in its own transaction. A request takes the
client from the cache only under the epoch value the cache was filled with, and that
value is checked against the database before the request is answered: read first
(one primary-key read, once per request), or, in the protocol views that promise to
confirm it (``idp.oauth.views``), read along the statement the request runs anyway
and compared before the answer leaves. So no request ordered after a cut-off's
commit is answered from the state before it.

Entries are detached copies built from one Core row (every column of the client and
its company, and the epoch), outside the request's session: the request's own
objects are never detached. A request gets its own instance of the
entry (``Session.merge(load=False)``: no SQL), so objects are never shared between
threads or sessions. Unknown ids are not cached: each is read again.

On PostgreSQL a :class:`Listener` thread per process empties the caches as soon as
an epoch bump commits (``LISTEN``); it only saves the first request after a
cut-off its reload, correctness never depends on it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import selectors
import socket
import threading
import weakref
from typing import Any

import psycopg
from flask import Flask
from flask import current_app
from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from idp.access import epoch
from idp.clients.models import Client
from idp.clients.models import Company
from idp.extensions import db

log = logging.getLogger(__name__)

_UNREAD = object()
_caches: weakref.WeakKeyDictionary[Flask, ClientCache] = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def _columns(model) -> list[tuple[str, Any]]:
    return [(prop.key, prop.columns[0]) for prop in inspect(model).column_attrs]


@functools.cache
def _load_statement() -> tuple[Select, list, list]:
    """The client, its company and the epoch in one constant Core statement (compiled
    once, prepared by psycopg after a few uses): an entry is tagged with the epoch its
    own snapshot saw, never with one read before or after it. Built on first use, once
    every mapper is configured."""
    client, company = _columns(Client), _columns(Company)
    statement = (select(*(c for _, c in client), *(c for _, c in company), epoch.column())
                 .join_from(Client, Company, Client.company_id == Company.id)
                 .where(Client.id == bindparam("client_id")))
    return statement, client, company


class ClientCache:
    """One app's clients by id, valid for one epoch value."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.epoch: Any = _UNREAD
        self.clients: dict[str, Client] = {}
        # Whether a Listener may empty this cache eagerly (PostgreSQL only); tests
        # turn it off to show that correctness never depends on it.
        self.listen = True
        self.listener: Listener | None = None

    def forget(self) -> None:
        with self.lock:
            self.epoch = _UNREAD
            self.clients = {}

    def put(self, client: Client, seen: int | None) -> None:
        with self.lock:
            if self.epoch != seen:
                self.epoch = seen
                self.clients = {}
            self.clients[client.id] = client

    def ensure_listener(self) -> None:
        """Start the listener on first use in this process (a forked worker starts its own)."""
        listener = self.listener
        if listener is not None and listener.alive():
            return
        if not self.listen or db.engine.dialect.name != "postgresql":
            return
        with self.lock:
            if self.listener is None or not self.listener.alive():
                url = db.engine.url.set(drivername="postgresql")
                self.listener = Listener(url.render_as_string(hide_password=False), self)
                self.listener.start()


class Listener:
    """``LISTEN idp_revocation_epoch`` on a connection of its own: every notification
    (sent at the commit of a bump) empties the cache. After a lost connection it
    empties the cache too, then listens again. An optimisation only: requests confirm
    the epoch themselves."""

    RETRY_SECONDS = 5.0
    POLL_SECONDS = 1.0

    def __init__(self, url: str, cache: ClientCache) -> None:
        self.url = url
        self.cache = cache
        self.listening = threading.Event()
        self.heard = threading.Event()  # set at each notification (tests wait on it)
        self._stopping = threading.Event()
        # stop() writes to this pair so that a listener waiting for notifications
        # returns at once instead of at the end of its poll.
        self._wake, self._waker = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="idp-epoch-listener",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):  # already stopped and closed
            self._waker.send(b"\0")
        if self._thread.is_alive():
            self._thread.join()
        self._wake.close()
        self._waker.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {epoch.CHANNEL}")
                    self.cache.forget()  # bumps while nobody listened
                    self.listening.set()
                    with selectors.DefaultSelector() as waiting:
                        waiting.register(connection.fileno(), selectors.EVENT_READ)
                        waiting.register(self._wake, selectors.EVENT_READ)
                        while not self._stopping.is_set():
                            # Notifications already read arrive with the poll (timeout=0
                            # looks once); the poll runs again at least every second.
                            for _note in connection.notifies(timeout=0):
                                self.cache.forget()
                                self.heard.set()
                            waiting.select(self.POLL_SECONDS)
            except psycopg.Error as exc:
                self.listening.clear()
                self.cache.forget()
                log.warning("revocation epoch listener lost its connection (%s); "
                            "requests still check the epoch", type(exc).__name__)
                self._stopping.wait(self.RETRY_SECONDS)
        self.listening.clear()


def cache_of(app: Flask) -> ClientCache:
    cache = _caches.get(app)
    if cache is None:
        with _guard:
            cache = _caches.setdefault(app, ClientCache())
    return cache


def stop_listener(app: Flask) -> None:
    """Stop the app's listener, if it runs (an app disposed of before the process ends)."""
    cache = _caches.get(app)
    if cache is not None and cache.listener is not None:
        cache.listener.stop()


def forget_all() -> None:
    """Empty every app's cache in this process (tests)."""
    for cache in list(_caches.values()):
        cache.forget()


def client(client_id: str) -> Client | None:
    """The client with this id as of the request's epoch, attached to the request's
    session; None for an unknown id."""
    cache = cache_of(current_app._get_current_object())
    cache.ensure_listener()
    with cache.lock:
        tag, entry = cache.epoch, cache.clients.get(client_id)
    if entry is None or tag != epoch.expected(tag, _UNREAD):
        entry, loaded = _load(client_id)
        if entry is None:
            return None
        epoch.seen(loaded)
        cache.put(entry, loaded)
    return db.session.merge(entry, load=False)


def peek(app: Flask, client_id: str) -> tuple[Client | None, Any]:
    """The cached entry for ``client_id`` and the epoch value it was read under, as they
    are: nothing loaded, merged or confirmed; ``(None, None)`` when it is not cached. The
    caller must confirm the epoch itself before it answers (``idp.oauth.direct``) and
    must only read the entry, which other threads share."""
    cache = _caches.get(app)
    if cache is None:
        return None, None
    with cache.lock:
        tag, entry = cache.epoch, cache.clients.get(client_id)
    if entry is None or tag is _UNREAD:
        return None, None
    return entry, tag


def _load(client_id: str) -> tuple[Client | None, int | None]:
    """A detached copy of the client and its company, built from one row: the
    request's own session and objects are left alone."""
    statement, client_columns, company_columns = _load_statement()
    row = db.session.execute(statement, {"client_id": client_id}).first()
    if row is None:
        return None, None
    offset = len(client_columns)
    company = Company(**{key: row[offset + i] for i, (key, _) in enumerate(company_columns)})
    make_transient_to_detached(company)
    entry = Client(**{key: row[i] for i, (key, _) in enumerate(client_columns)})
    make_transient_to_detached(entry)
    set_committed_value(entry, "company", company)  # as if loaded; company.clients untouched
    return entry, row[-1]
