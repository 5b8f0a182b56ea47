"""The suite's own layout (issue 13): what tests share lives in ``tests/factories.py``,
``tests/helpers/`` and the conftests, never in another test module, so that reading one
test module never sends a reader into a second one, and moving or deleting a test
module breaks no other."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _test_modules():
    for path in sorted(TESTS.rglob("test_*.py")):
        if "node_modules" not in path.parts:
            yield path


def _imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_test_module_imports_another():
    """Test that no test module imports from a test module (tests.…test_*)."""
    offending = {
        str(path.relative_to(TESTS)): sorted(
            name for name in _imported(path)
            if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_"))
        for path in _test_modules()}
    assert {k: v for k, v in offending.items() if v} == {}


def test_the_check_reads_the_suite():
    """Test that the check above has modules to read (a wrong root would pass anything)."""
    modules = list(_test_modules())
    assert len(modules) > 100
    assert Path(__file__).resolve() in modules
