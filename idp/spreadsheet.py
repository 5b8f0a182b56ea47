"""CSV cells a spreadsheet will not run as formulas (CSV injection, OWASP).

Every CSV we hand out (audit export, usage reports, the city export) may hold
text someone else typed: client and kiosk names, locations, user agents. A
spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and,
in some, after a tab or carriage return) as a formula; OWASP's "CSV
Injection" advice is to prefix such a cell with a single quote.
"""

from __future__ import annotations

import csv
import io
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value``, with a leading ``'`` when it is text a spreadsheet would evaluate."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer that neutralises formula-like text cells.

    Lines end in CRLF (RFC 4180): the csv module quotes a field holding any
    character of the line terminator, so a CR or LF inside a name stays inside
    its quoted cell instead of starting a new row (with "\n" alone, a bare CR
    went out unquoted and a spreadsheet began a new row there).
    """

    def __init__(self, out: io.StringIO):
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: list[Any]) -> None:
        self._writer.writerow([safe_cell(v) for v in row])
