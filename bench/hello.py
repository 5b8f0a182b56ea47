"""The bare-Flask ceiling: one route answering a constant, served under exactly
the server settings of ``idp serve`` (``idp.cli.serve.server_options``,
read from the same IDP_* environment). bench/run.py starts it with
``python bench/hello.py PORT``.

``/db`` (when ``BENCH_HELLO_DB`` names a PostgreSQL database) adds the least a
request can do that consults the database: check a connection out of
SQLAlchemy's pool (with the IdP's engine options), run ``SELECT 1`` in a
transaction, give it back. Every protocol endpoint of the IdP must do at least
that, since a revoked client or token is refused on the next request on every
node; its rate is the ceiling of such endpoints on this machine.
"""

from __future__ import annotations

import os
import sys

from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy import text

app = Flask(__name__)
engine = None
if os.environ.get("BENCH_HELLO_DB"):
    # The options idp.create_app gives a PostgreSQL engine, and its idle-only ping.
    from idp.db import ping_idle_connections

    engine = create_engine(os.environ["BENCH_HELLO_DB"], connect_args={"connect_timeout": 5})
    ping_idle_connections(engine)


@app.get("/")
def hello():
    return "hello"


@app.get("/db")
def hello_db():
    with engine.begin() as conn:
        return f"hello {conn.execute(text('SELECT 1')).scalar_one()}"


if __name__ == "__main__":
    from pathlib import Path

    # granian imports the app by name in its workers: the repository root must be importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from idp.cli.serve import run
    from idp.cli.serve import server_options
    from idp.config import Settings

    run("bench.hello:app", server_options(Settings.load(), "127.0.0.1", int(sys.argv[1])))
