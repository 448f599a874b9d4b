"""Provider fixtures: fake servers (one per session, reset for each test) and a
real SDK-backed client per test pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.engine.models.anthropic import AnthropicModel
from app.engine.models.openai import OpenAIChatModel
from tests.fakes import FakeAnthropicServer, FakeOpenAIServer
from tests.providers.helpers import API_KEY


@pytest.fixture(scope="session")
async def shared_openai_server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="session")
async def shared_anthropic_server() -> AsyncIterator[FakeAnthropicServer]:
    async with FakeAnthropicServer() as server:
        yield server


@pytest.fixture
def openai_server(shared_openai_server: FakeOpenAIServer) -> FakeOpenAIServer:
    shared_openai_server.reset()
    return shared_openai_server


@pytest.fixture
def anthropic_server(shared_anthropic_server: FakeAnthropicServer) -> FakeAnthropicServer:
    shared_anthropic_server.reset()
    return shared_anthropic_server


@pytest.fixture
async def openai_model(openai_server: FakeOpenAIServer) -> AsyncIterator[OpenAIChatModel]:
    model = OpenAIChatModel(base_url=openai_server.base_url, api_key=API_KEY)
    yield model
    await model.aclose()


@pytest.fixture
async def anthropic_model(anthropic_server: FakeAnthropicServer) -> AsyncIterator[AnthropicModel]:
    model = AnthropicModel(base_url=anthropic_server.base_url, api_key=API_KEY)
    yield model
    await model.aclose()
