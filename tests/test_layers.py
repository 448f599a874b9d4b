"""The packages of app/ depend on each other in one direction.

From the bottom: compat (the only place touching libraries' private names),
the engine (the agent loop), the foundation (settings, database, errors,
notifier), the worker (executes runs), the domains and protocol adapters
(agents, runs, sessions, ...), and the application that wires them. A module
imports only from its own layer or the ones below, and no two packages import
each other, directly or through others. A new top-level module or package must
be given its layer here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

LAYERS: list[set[str]] = [
    {"compat"},
    {"engine", "extensions"},
    {
        "config",
        "db",
        "deps",
        "errors",
        "gctune",
        "ids",
        "logs",
        "migrate",
        "notify",
        "pagination",
        "principal",
        "routing",
        "serving",
        "sse_response",
        "tables",
        "tracing",
    },
    {"worker"},
    {
        "agents",
        "agui",
        "console",
        "identity",
        "mcp",
        "memories",
        "openai_compat",
        "runs",
        "sessions",
        "tools_routes",
        "vercel",
    },
    {"health", "main", "metrics", "openapi", "runtime"},
]


def top_level(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "app" and len(parts) > 1 else None


def imports() -> dict[str, set[tuple[str, str]]]:
    """Each top-level unit of app/ -> the (unit, file) pairs it imports from."""
    edges: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in APP.rglob("*.py"):
        relative = path.relative_to(APP.parent).with_suffix("")
        unit = relative.parts[1]
        if unit == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                target = top_level(name)
                if target is not None and target != unit:
                    edges[unit].add((target, str(relative)))
    return edges


def layer_of(unit: str) -> int:
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise AssertionError(f"app/{unit} has no layer: add it to LAYERS in {__file__}")


def test_every_unit_has_a_layer() -> None:
    units = {path.stem for path in APP.glob("*.py") if path.stem != "__init__"}
    units |= {path.parent.name for path in APP.glob("*/__init__.py")}
    for unit in units:
        layer_of(unit)


def test_imports_point_down() -> None:
    wrong = [
        f"{where} imports app.{target} (layer {layer_of(target)} above {layer_of(unit)})"
        for unit, targets in imports().items()
        for target, where in targets
        if layer_of(target) > layer_of(unit)
    ]
    assert wrong == []


def test_no_import_cycle_between_packages() -> None:
    graph = {unit: {target for target, _ in targets} for unit, targets in imports().items()}

    def reaches(start: str, goal: str) -> bool:
        seen: set[str] = set()
        todo = [start]
        while todo:
            unit = todo.pop()
            for target in graph.get(unit, ()):
                if target == goal:
                    return True
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return False

    cycles = sorted(
        f"app.{unit} -> app.{target} -> ... -> app.{unit}"
        for unit, targets in graph.items()
        for target in targets
        if reaches(target, unit)
    )
    assert cycles == []


def test_the_checks_see_a_wrong_import() -> None:
    """The graph is read from the source: the worker importing a domain would show."""
    edges = imports()
    assert ("engine", "app/worker/executor") in edges["worker"]
    assert layer_of("worker") < layer_of("runs")
