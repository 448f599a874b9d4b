"""The official JavaScript clients some tests drive with node (tests/js): their
versions are pinned in tests/js/package-lock.json, and `npm ci` installs them
into the ignored tests/js/node_modules when one of them is missing or another
version."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

JS = Path(__file__).resolve().parent / "js"


def _installed() -> bool:
    wanted: dict[str, str] = json.loads((JS / "package.json").read_text())["dependencies"]
    for name, version in wanted.items():
        manifest = JS / "node_modules" / name / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text())["version"] != version:
            return False
    return True


def js_clients() -> Path:
    """tests/js, its packages installed."""
    if not _installed():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=JS,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return JS
