"""``idp serve``: run the IdP under gunicorn."""

from __future__ import annotations

import click
from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, app, options: dict) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._app


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", type=int, default=None, help="Default: IDP_GUNICORN_WORKERS.")
@click.pass_obj
def group(ctx, host: str, port: int, workers: int | None) -> None:
    """Serve the IdP with gunicorn (threaded workers)."""
    settings = ctx.app.extensions["idp.settings"]
    _Gunicorn(ctx.app, {
        "bind": f"{host}:{port}",
        "workers": workers or settings.gunicorn_workers,
        "threads": settings.gunicorn_threads,
        "worker_class": "gthread",
        "accesslog": "-",
        # The path only: query strings carry login_hint emails and id_token_hints.
        "access_log_format": '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss',
        # Forwarded headers are the app's business (settings.proxy_hops).
        "forwarded_allow_ips": "",
    }).run()
