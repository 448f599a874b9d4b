"""The engine imports neither the web framework nor the database layer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import importlib, json, pkgutil, sys
import app.engine
names = []
for module in pkgutil.walk_packages(app.engine.__path__, "app.engine."):
    importlib.import_module(module.name)
    names.append(module.name)
banned = sorted(
    name for name in sys.modules
    if name.split(".")[0]
    in {"fastapi", "starlette", "sqlalchemy", "asyncpg", "aiosqlite", "sse_starlette", "uvicorn"}
)
print(json.dumps({"modules": names, "banned": banned}))
"""


def test_app_engine_imports_no_web_or_database_module() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"app.engine.loop", "app.engine.tools", "app.engine.models.test"} <= set(
        report["modules"]
    )
    assert report["banned"] == []
