"""The service against the fake OpenAI-compatible server over real HTTP, with the
users' extensions of tests/surface/user_extensions.py loaded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.runs.conftest import LiveServer, serving

MODULE = "tests.surface.user_extensions"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
async def over_http(
    database_url: str, db_engine: object, fake: FakeOpenAIServer
) -> AsyncIterator[LiveServer]:
    settings = make_settings(
        database_url,
        openai_base_url=fake.base_url,
        openai_api_key="sk-test",
        model_max_retries=1,
        tool_modules=[MODULE],
    )
    async with serving(settings) as server:
        yield server
