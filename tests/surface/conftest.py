"""The service against the fake OpenAI-compatible server over real HTTP
(`over_http`), with the users' extensions of tests/surface/user_extensions.py loaded."""

from __future__ import annotations

from typing import Any

import pytest

MODULE = "tests.surface.user_extensions"


@pytest.fixture
def over_http_settings() -> dict[str, Any]:
    return {"tool_modules": [MODULE]}
