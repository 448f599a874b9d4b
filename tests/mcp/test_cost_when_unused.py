"""A service nobody calls over MCP, with no MCP_SERVERS, does not load the MCP SDK
(a large import, a good part of the server's memory)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from app.config import Settings
from app.main import create_app
create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
loaded = sorted(m for m in sys.modules if m == "mcp" or m.startswith("mcp."))
print(len(loaded), loaded[:3])
"""


def test_the_mcp_sdk_is_not_imported_until_used() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert probe.stdout.startswith("0 "), probe.stdout
