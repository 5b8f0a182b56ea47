"""Serve an app on a loopback port in a thread, for tests over real HTTP: the IdP
(``serve``) or any WSGI app, e.g. the demo relying party (``serve_wsgi``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server

from idp import create_app
from tests.helpers.app import TEST_SETTINGS


class _Dispatch:
    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@contextmanager
def serve(database_url: str, hostname: str = "127.0.0.1", **overrides) -> Iterator[str]:
    """Yield the base URL of the IdP served on 127.0.0.1:<free port>, threaded.
    ``hostname`` names it in the URL (and issuer): ``localhost`` for WebAuthn, whose
    relying-party id cannot be an IP address."""
    apps = []

    def make(base: str):
        apps.append(create_app({**TEST_SETTINGS, "database_url": database_url, "issuer": base,
                                **overrides}))
        return apps[0]

    try:
        with serve_wsgi(make, hostname) as base:
            yield base
    finally:
        if apps:
            with apps[0].app_context():
                from idp.extensions import db

                db.engine.dispose()


@contextmanager
def serve_wsgi(make_app, hostname: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``make_app(base)`` on 127.0.0.1:<free port> in a thread; yield the base URL
    (``hostname`` names the address in it)."""
    dispatch = _Dispatch()
    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    base = f"http://{hostname}:{server.server_port}"
    dispatch.app = make_app(base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=10)
