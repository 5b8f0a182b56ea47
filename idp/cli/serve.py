"""``idp serve``: run the IdP under granian (WSGI, worker processes × blocking threads).

Why granian rather than gunicorn's gthread worker (measured, docs/deploy.md):
gthread hands a connection to a thread as soon as its first byte arrives and
then reads the request without a timeout, so eight connections trickling
their headers (2 workers × 4 threads) left a node answering nothing. granian
reads requests in its Rust event loop and gives a thread only a complete
request; a connection that has not sent its headers within
``serve_header_timeout`` seconds is closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from granian import Granian
from granian.constants import Interfaces
from granian.http import HTTP1Settings

from idp import logs
from idp import metrics
from idp.config import Settings

# The path only: query strings carry login_hint emails and id_token_hints.
ACCESS_LOG_FORMAT = ('%(addr)s [%(time)s] "%(method)s %(path)s %(protocol)s" %(status)d '
                     '%(dt_ms).1fms')


def served_app():
    """The WSGI app each worker serves (granian imports and calls this factory)."""
    from idp import create_app

    return create_app()


def server_options(settings: Settings, host: str, port: int,
                   workers: int | None = None) -> dict[str, Any]:
    """The granian settings of ``idp serve`` (also used by bench/hello.py, so the
    benchmark's bare-Flask ceiling runs under exactly the same server)."""
    return {
        "address": host,
        "port": port,
        "interface": Interfaces.WSGI,
        "workers": workers or settings.gunicorn_workers,
        "blocking_threads": settings.gunicorn_threads,
        "http1_settings": HTTP1Settings(
            header_read_timeout=settings.serve_header_timeout * 1000,
            keep_alive=settings.gunicorn_keepalive > 0),
        "websockets": False,
        # With JSON logs the app writes each request's line itself (idp.logs: with
        # its request id, endpoint and client id), so granian's would be a duplicate.
        "log_access": not settings.json_logs,
        "log_access_format": ACCESS_LOG_FORMAT,
        "log_dictconfig": logs.granian_log_config(settings),
        # A worker that dies (killed, out of memory) is started again, as gunicorn did.
        "respawn_failed_workers": True,
        # Forwarded headers are the app's business (settings.proxy_hops): granian
        # applies none of its own. Metrics from every worker process: set
        # PROMETHEUS_MULTIPROC_DIR (docs/metrics.md) in the service's environment.
    }


def reset_metrics_dir() -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR before the workers start: files of a previous run
    would add its counts to this one's (prometheus-client multiprocess mode)."""
    path = metrics.multiprocess_dir()
    if path is None:
        return
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def run(target: str, options: dict[str, Any], factory: bool = False) -> None:
    Granian(target, factory=factory, **options).serve()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", type=int, default=None, help="Default: IDP_GUNICORN_WORKERS.")
@click.pass_obj
def group(ctx, host: str, port: int, workers: int | None) -> None:
    """Serve the IdP with granian (worker processes with blocking threads)."""
    # Building the app here checks the settings before any worker starts; each
    # worker then builds its own from the same environment.
    settings = ctx.settings
    reset_metrics_dir()
    run("idp.cli.serve:served_app", server_options(settings, host, port, workers),
        factory=True)
