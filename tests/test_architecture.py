"""The rooms of app/ and jobs/ (docs/architecture.md) and the one way imports go
between them, read from the source: a move that breaks the plan fails here.
(That app/ never imports jobs/ at all: tests/app/test_background.py.)"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import ROOT

WIRING = {"app", "app.extensions"}  # the factory and the clients it makes: may use every room
SEAM = "app.ops.bookkeeping"  # the lesson's one door into operations
# Which room may import which (a room always imports itself). The lesson's rooms use
# web hardening and the seam; the other rooms build on the lesson's, never the reverse.
ALLOWED = {
    "lesson": {"guards", "wiring", "seam"},
    "guards": {"lesson", "wiring"},
    "ops": {"lesson", "wiring", "seam"},
    "seam": {"ops", "lesson"},
    "runtime": {"lesson", "ops", "wiring", "seam"},
    "wiring": {"lesson", "guards", "ops", "seam"},
}


def room(module: str) -> str:
    if module in WIRING:
        return "wiring"
    if module == SEAM:
        return "seam"
    for prefix, name in (("app.ops", "ops"), ("app.guards", "guards"), ("jobs.runtime", "runtime")):
        if module == prefix or module.startswith(prefix + "."):
            return name
    return "lesson"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path
    for folder in ("app", "jobs")
    for path in sorted((ROOT / folder).rglob("*.py"))
}


def imports(module: str, *, top_level_only: bool = False) -> Iterator[str]:
    """The first-party modules ``module`` imports (``from app import keys`` is app.keys)."""
    tree = ast.parse(MODULES[module].read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] in ("app", "jobs"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in ("app", "jobs"):
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield full if full in MODULES else node.module


def test_the_rooms_import_each_other_one_way_only():
    wrong = sorted(
        f"{module} ({room(module)}) imports {target} ({room(target)})"
        for module in MODULES
        for target in imports(module)
        if room(target) != room(module) and room(target) not in ALLOWED[room(module)]
    )
    assert wrong == []


def test_no_module_imports_itself_back_through_others():
    """No circles among module-level imports (the factory's imports inside
    create_app, and get_app's, are made when they run, not when a module loads)."""
    graph = {m: set(imports(m, top_level_only=True)) - {m} for m in MODULES}
    seen, on_path, circles = set(), [], []

    def visit(module: str) -> None:
        if module in on_path:
            circles.append(on_path[on_path.index(module) :] + [module])
            return
        if module in seen:
            return
        seen.add(module)
        on_path.append(module)
        for target in sorted(graph.get(module, ())):
            visit(target)
        on_path.pop()

    for module in sorted(graph):
        visit(module)
    assert circles == []


@pytest.mark.parametrize("name", ["lesson", "guards", "ops", "runtime"])
def test_every_room_holds_something(name):
    assert any(room(m) == name for m in MODULES)
