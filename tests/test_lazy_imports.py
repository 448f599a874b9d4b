"""Large libraries that only some deployments use are not loaded by a service
that does not use them: each is a good part of the server's memory. The MCP
SDK loads on the first request to /mcp or with MCP_SERVERS; PyJWT (and the
cryptography package it brings) only when tokens are configured; the Responses
API's event templates (the openai SDK's validators for `Response`) on the first
Responses request."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from app.config import Settings
from app.main import create_app
create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", {settings}))
loaded = sorted(m for m in sys.modules if m == {name!r} or m.startswith({name!r} + "."))
print(len(loaded), loaded[:3])
"""


def loaded_by_create_app(name: str, settings: str = "") -> str:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(name=name, settings=settings)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return probe.stdout


@pytest.mark.parametrize(
    "name", ["mcp", "jwt", "cryptography", "app.openai_compat.response_events"]
)
def test_an_unused_library_is_not_imported(name: str) -> None:
    assert loaded_by_create_app(name).startswith("0 ")


def test_pyjwt_is_imported_once_tokens_are_configured() -> None:
    # The probe sees what it looks for: with a JWT secret, PyJWT is loaded.
    assert not loaded_by_create_app("jwt", 'jwt_secret="s" * 32').startswith("0 ")
