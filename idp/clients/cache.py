"""Clients and their companies, kept in process per app (that is, per worker) and
trusted only while the revocation epoch has not moved (``idp.access.epoch``).

Client authentication reads the client on every protocol request; read from the
database that was the widest row of the request (docs/performance.md). Here a
request reads the epoch (one primary-key read, once per request) and takes the
client from the cache when the cache was filled under the same epoch value; any
other value empties the cache first. Every change to a client or a company
bumps the epoch in its own transaction, so no request that reads the epoch after
a cut-off committed can be answered from the state before it.

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

import functools
import logging
import threading
import weakref
from typing import Any

from flask import Flask
from flask import current_app
from sqlalchemy import bindparam
from sqlalchemy import inspect
from sqlalchemy import Select
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


def cache_of(app: Flask) -> ClientCache:
    cache = _caches.get(app)
    if cache is None:
        with _guard:
            cache = _caches.setdefault(app, ClientCache())
    return cache


def forget_all() -> None:
    """Empty every app's cache in this process (the listener, tests)."""
    for cache in list(_caches.values()):
        cache.forget()


def client(client_id: str) -> Client | None:
    """The client with this id as of the request's epoch, attached to the request's
    session; None for an unknown id."""
    cache = cache_of(current_app._get_current_object())
    with cache.lock:
        tag, entry = cache.epoch, cache.clients.get(client_id)
    if entry is None or tag != epoch.expected(tag, _UNREAD):
        entry, loaded = _load(client_id)
        if entry is None:
            return None
        epoch.seen(loaded)
        cache.put(entry, loaded)
    return db.session.merge(entry, load=False)


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
