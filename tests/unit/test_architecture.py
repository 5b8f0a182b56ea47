"""The import rules of docs/architecture.md, read from the code with ``ast``.

A package is a folder directly under ``idp/`` (a module directly under ``idp/``
counts as its own package). Packages sit on floors; a package imports only
packages on lower floors, or packages of its own floor when the pair is listed
in ``SAME_FLOOR``. The app factory (``idp/__init__.py``) and the model index
(``idp/models.py``) stand above everything: they wire the house together.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IDP = ROOT / "idp"

# Top to bottom. Every package under idp/ must be on exactly one floor.
FLOORS: list[tuple[str, set[str]]] = [
    ("operators", {"cli", "admin"}),
    ("web", {"interaction", "self_service", "api", "transparency", "observability"}),
    ("protocol", {"oauth"}),
    ("privacy", {"privacy", "citydata"}),
    ("domains", {"consent", "kiosk", "accounts", "clients", "keys", "terms", "proofing", "mail",
                  "exchange", "sensors"}),
    ("access", {"access"}),
    ("records", {"audit", "outbox"}),
    ("base", {"db", "config", "extensions", "secrets", "security", "scopes", "locales", "http",
              "errors", "inputs", "proxy", "spreadsheet", "limiter_storage", "geo", "metrics",
              "logs"}),
]
WIRING = {"__init__", "models"}

# Imports between packages of one floor that are part of the design (never a cycle).
SAME_FLOOR = {
    ("cli", "admin"),
    ("consent", "accounts"), ("consent", "clients"), ("consent", "terms"), ("consent", "proofing"),
    ("kiosk", "clients"), ("sensors", "clients"),
    ("proofing", "accounts"),
    ("exchange", "clients"), ("exchange", "consent"),
    ("exchange", "mail"),  # the monitoring mails its alerts to the admins
    ("accounts", "mail"), ("accounts", "terms"),
    ("privacy", "citydata"),  # an account deletion forgets the city export's frozen hours
    ("self_service", "interaction"),  # the browser session and a pending interaction at registration
    ("config", "proxy"), ("extensions", "db"), ("http", "config"), ("inputs", "config"),
    ("inputs", "errors"), ("errors", "extensions"), ("limiter_storage", "config"),
    ("config", "security"), ("security", "secrets"), ("security", "extensions"), ("security", "db"),
    ("audit", "spreadsheet"), ("outbox", "audit"),
    ("metrics", "config"), ("logs", "metrics"), ("logs", "config"),
}

FLOOR_OF = {package: index for index, (_, packages) in enumerate(FLOORS) for package in packages}


def _package(path: Path) -> str:
    parts = path.relative_to(IDP).parts
    return parts[0][:-3] if len(parts) == 1 else parts[0]


def _imports() -> list[tuple[str, str, str, str]]:
    """(importing package, imported top-level module path, file:line, full module name)."""
    found = []
    for path in sorted(IDP.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            for name in names:
                found.append((_package(path), name.split(".")[0], where, name))
    return found


IMPORTS = _imports()


def _is_package(name: str) -> bool:
    """``from idp import create_app`` names a function, not a package."""
    return (IDP / name).is_dir() or (IDP / f"{name}.py").is_file()


def _edges() -> dict[tuple[str, str], str]:
    edges: dict[tuple[str, str], str] = {}
    for source, top, where, name in IMPORTS:
        parts = name.split(".")
        if top != "idp" or len(parts) < 2 or parts[1] == source or not _is_package(parts[1]):
            continue
        edges.setdefault((source, parts[1]), where)
    return edges


EDGES = _edges()


def test_every_package_is_on_one_floor():
    packages = {_package(path) for path in IDP.rglob("*.py")} - WIRING
    assert packages - FLOOR_OF.keys() == set(), "add the new package to FLOORS"
    assert len(FLOOR_OF) == sum(len(each) for _, each in FLOORS)


@pytest.mark.parametrize(("source", "target"), sorted(EDGES))
def test_imports_run_downward(source, target):
    if source in WIRING:
        return
    assert target not in WIRING, f"{EDGES[source, target]}: only the app factory imports {target}"
    here, there = FLOOR_OF[source], FLOOR_OF[target]
    if here == there:
        assert (source, target) in SAME_FLOOR, (
            f"{EDGES[source, target]}: {source} imports {target} on its own floor "
            f"({FLOORS[here][0]}); list the pair in SAME_FLOOR if it is by design")
    else:
        assert there > here, (
            f"{EDGES[source, target]}: {source} ({FLOORS[here][0]}) imports {target}, "
            f"which stands above it ({FLOORS[there][0]})")


def test_same_floor_pairs_are_imports():
    """A pair in SAME_FLOOR that no import uses any more would let one in unseen later."""
    assert set(SAME_FLOOR) - set(EDGES) == set()


def test_no_package_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in EDGES:
        if source not in WIRING:
            graph[source].add(target)
    seen: dict[str, int] = {}  # 1 = on the path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail("package cycle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt, path + [nxt])
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node, [node])


def test_authlib_only_under_oauth():
    outside = [where for source, top, where, _ in IMPORTS if top == "authlib" and source != "oauth"]
    assert outside == []


def test_protocol_knows_no_pages():
    """idp/oauth answers protocol requests; the pages of an interaction are idp/interaction's."""
    ui = {"flask.render_template", "flask.flash", "flask_babel.gettext", "flask_babel.lazy_gettext"}
    found = [where for source, _, where, name in IMPORTS if source == "oauth" and name in ui]
    assert found == []
