"""Services never commit (issue 13): every ``commit()`` in ``idp/`` is one of the
transaction boundaries docs/architecture.md lists under "Transactions", and a new one
fails here until it is argued there and added below."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

IDP = Path(__file__).resolve().parents[2] / "idp"

# (module, function): how many commit() calls it may hold. Each is listed, with why, in
# docs/architecture.md#transactions.
BOUNDARIES = {
    ("extensions.py", "end_unit_of_work"): 1,          # the request's unit of work
    ("cli/__init__.py", "in_app.wrapper"): 1,          # the command's unit of work
    ("cli/__init__.py", "_audit_refusal"): 1,          # a failed command's refusal audit
    ("admin/views/__init__.py", "admin_required.wrapper"): 2,  # activity touch first
    ("outbox/service.py", "_claim"): 1,                # the outbox's claim transaction
    ("outbox/service.py", "_record_outcomes"): 1,     # and its outcome transaction
    ("cli/audit.py", "seal_pending"): 1,               # one commit per sealed batch
    ("cli/audit.py", "verify"): 1,                     # audited before exit 1
    ("cli/worker.py", "periodic"): 1,                  # the worker's periodic unit of work
    ("cli/demo.py", "run"): 1,                         # seeded before the demo apps start
    ("oauth/direct.py", "DirectAnswers._within_app"): 1,  # a request answered beneath Flask
}


def _commits() -> Counter:
    """(module, qualified name of the innermost function): commit() calls in it."""
    found: Counter = Counter()

    def visit(node, module: str, names: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            inner = names
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = (*names, child.name)
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and child.func.attr == "commit" and not child.args):
                found[(module, ".".join(names) or "<module>")] += 1
            visit(child, module, inner)

    for path in sorted(IDP.rglob("*.py")):
        visit(ast.parse(path.read_text(encoding="utf-8")), path.relative_to(IDP).as_posix(), ())
    return found


def test_every_commit_is_a_listed_boundary():
    """Test that commit() appears only in the listed functions, as often as listed."""
    assert dict(_commits()) == BOUNDARIES
