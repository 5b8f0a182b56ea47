"""``idp serve``: run the IdP under gunicorn."""

from __future__ import annotations

from typing import Any

import click
from gunicorn.app.base import BaseApplication

from idp.config import Settings


class Gunicorn(BaseApplication):
    """gunicorn in-process, around an app object built before the workers fork."""

    def __init__(self, app, options: dict) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._app


def gunicorn_options(settings: Settings, host: str, port: int,
                     workers: int | None = None) -> dict[str, Any]:
    """The gunicorn settings of ``idp serve`` (also used by bench/hello.py, so the
    benchmark's bare-Flask ceiling runs under exactly the same server)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers or settings.gunicorn_workers,
        "threads": settings.gunicorn_threads,
        "worker_class": "gthread",
        "keepalive": settings.gunicorn_keepalive,
        "accesslog": "-",
        # The path only: query strings carry login_hint emails and id_token_hints.
        "access_log_format": '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss',
        # Forwarded headers are the app's business (settings.proxy_hops).
        "forwarded_allow_ips": "",
    }


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", type=int, default=None, help="Default: IDP_GUNICORN_WORKERS.")
@click.pass_obj
def group(ctx, host: str, port: int, workers: int | None) -> None:
    """Serve the IdP with gunicorn (threaded workers)."""
    settings = ctx.app.extensions["idp.settings"]
    Gunicorn(ctx.app, gunicorn_options(settings, host, port, workers)).run()
