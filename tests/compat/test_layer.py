"""app/compat is the lowest layer: it imports no other app package."""

from __future__ import annotations

import ast
from pathlib import Path

import app.compat

COMPAT = Path(app.compat.__file__).parent


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_compat_imports_nothing_else_of_app() -> None:
    modules = sorted(COMPAT.glob("*.py"))
    assert len(modules) >= 4
    for path in modules:
        ours = {m for m in imported_modules(path) if m == "app" or m.startswith("app.")}
        assert ours <= {"app.compat"}, f"{path.name} imports {sorted(ours)}"
