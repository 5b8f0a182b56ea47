"""The bare-Flask ceiling: one route answering a constant, served under exactly
the gunicorn settings of ``idp serve`` (``idp.cli.serve.gunicorn_options``,
read from the same IDP_* environment). bench/run.py starts it with
``python bench/hello.py PORT``.
"""

from __future__ import annotations

import sys

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "hello"


if __name__ == "__main__":
    from idp.cli.serve import Gunicorn
    from idp.cli.serve import gunicorn_options
    from idp.config import Settings

    Gunicorn(app, gunicorn_options(Settings.load(), "127.0.0.1", int(sys.argv[1]))).run()
