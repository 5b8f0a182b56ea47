"""Capture every log line as the JSON object production writes (idp.logs)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable
from collections.abc import Iterator

from idp import logs


@contextlib.contextmanager
def json_lines(level: int = logging.INFO) -> Iterator[Callable[[], list[dict]]]:
    """Yields a function returning the lines so far, each parsed as JSON (a line that is
    not one JSON object fails the test)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.json_formatter())
    handler.addFilter(logs.RequestIdFilter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
