#!/usr/bin/env python3
"""Developer entry point; needs only Python 3.11+.

    python3.11 dev.py demo    # virtualenv, install, migrate SQLite, seed the demo, serve :5000
    python3.11 dev.py test    # virtualenv, install with test and browser extras, run the tests
    python3.11 dev.py idp …   # the `idp` command of .venv (e.g. `dev.py idp admins create …`)

Extra arguments after `test` go to pytest (e.g. `python3.11 dev.py test -k pkce`); after
`idp`, to .venv/bin/idp. Every `demo` run brings the demo companies, clients and resident
back to their demo state (idp/cli/demo.py).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
# Which extras pip installed for which pyproject.toml (sha256), one per line.
STAMP = VENV / "machi-id-installed"


def run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)  # noqa: S603


def ensure_venv(extras: str) -> None:
    """.venv with the project installed (editable) with ``extras``. pip runs only when
    pyproject.toml has changed since it last installed these extras: asking pip again
    cost about 4 seconds on every `dev.py test`, to learn that nothing had changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs before any install
        sys.exit("Machi ID needs Python 3.11 or newer")
    if not (BIN / "python").exists():
        print("creating virtualenv in .venv", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    wanted = f"{extras} {hashlib.sha256((ROOT / 'pyproject.toml').read_bytes()).hexdigest()}"
    installed = STAMP.read_text().splitlines() if STAMP.exists() else []
    if wanted in installed:
        return
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "-e", f".{extras}")
    STAMP.write_text("\n".join([*installed, wanted]) + "\n")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "idp"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "idp":
        # `idp` is not on PATH after the quick start: pass through to the virtualenv's.
        if not (BIN / "idp").exists():
            ensure_venv("")
        os.execv(BIN / "idp", [str(BIN / "idp"), *argv[1:]])  # noqa: S606
    if argv[0] == "demo":
        ensure_venv("")
        os.execv(BIN / "idp", [str(BIN / "idp"), "demo", "run"])  # noqa: S606
    ensure_venv("[test,browser]")  # browser: Playwright only; Chromium comes from apt
    return subprocess.call([str(BIN / "python"), "-m", "pytest", *argv[1:]], cwd=ROOT)  # noqa: S603


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
