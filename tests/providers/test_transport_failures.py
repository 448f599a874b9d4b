"""Reading a streamed answer's body over real HTTP, for both providers: straight off
the SDKs' aiohttp transport, and a server that fails mid-answer (the connection
dropped, or nothing more sent within the read timeout), which is a short
`ModelProviderError` after the deltas that arrived before it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import orjson
import pytest

from app.engine.models import http
from app.engine.models.anthropic import AnthropicModel
from app.engine.models.base import ContentDelta, ModelClient, ModelDelta, ModelProviderError
from app.engine.models.openai import OpenAIChatModel
from tests.fakes import CUT, FakeAnthropicServer, FakeOpenAIServer, Reply
from tests.fakes.script import FakeModelServer, sse
from tests.providers.helpers import API_KEY, ask

OPENAI_START = [sse({"choices": [{"index": 0, "delta": {"content": "Hello "}}]})]
HELLO = {"type": "text_delta", "text": "Hello "}
ANTHROPIC_START = [
    sse({"type": "message_start", "message": {"usage": {"input_tokens": 3}}}, "message_start"),
    sse(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        "content_block_start",
    ),
    sse({"type": "content_block_delta", "index": 0, "delta": HELLO}, "content_block_delta"),
]


@pytest.fixture(params=["openai", "anthropic"])
def provider(
    request: pytest.FixtureRequest,
    openai_server: FakeOpenAIServer,
    anthropic_server: FakeAnthropicServer,
) -> tuple[FakeModelServer, type[Any], list[bytes]]:
    if request.param == "openai":
        return openai_server, OpenAIChatModel, OPENAI_START
    return anthropic_server, AnthropicModel, ANTHROPIC_START


async def test_the_body_is_read_off_the_sdks_aiohttp_transport(
    provider: tuple[FakeModelServer, type[Any], list[bytes]],
) -> None:
    """The SDKs' responses wrap aiohttp's: `body_chunks` reads it directly (a change
    in the SDKs' transport would fall back to `aiter_raw`, slower but correct)."""
    server, model_class, _ = provider
    server.enqueue(Reply(text="Hello world"))
    model = model_class(base_url=server.base_url, api_key=API_KEY)
    path = "/chat/completions" if model_class is OpenAIChatModel else "/v1/messages"
    body = {"model": "m", "max_tokens": 5, "stream": True, "messages": [ask().messages[0]]}
    try:
        response: httpx2.Response = await model._client.post(
            path, cast_to=httpx2.Response, content=orjson.dumps(body), stream=True
        )
        try:
            chunks = http.body_chunks(response)
            assert type(chunks).__module__.startswith("aiohttp.")
            text = b"".join([chunk async for chunk in chunks])
        finally:
            await response.aclose()
    finally:
        await model.aclose()
    assert b"Hello " in text and b"world" in text


async def deltas_until_failure(
    model: ModelClient, seen: list[ModelDelta]
) -> AsyncIterator[ModelDelta]:
    async for delta in model.stream(ask()):
        seen.append(delta)
        yield delta


async def test_a_connection_dropped_mid_answer_is_a_provider_error(
    provider: tuple[FakeModelServer, type[Any], list[bytes]],
) -> None:
    server, model_class, start = provider
    server.enqueue(Reply(raw=[*start, CUT]))
    model = model_class(base_url=server.base_url, api_key=API_KEY, max_retries=0)
    seen: list[ModelDelta] = []
    try:
        with pytest.raises(ModelProviderError, match=r"connection lost \(\w+\)$") as caught:
            async for _ in deltas_until_failure(model, seen):
                pass
    finally:
        await model.aclose()
    assert seen == [ContentDelta("Hello ")]
    assert API_KEY not in str(caught.value)


async def test_a_server_gone_quiet_mid_answer_times_out(
    provider: tuple[FakeModelServer, type[Any], list[bytes]],
) -> None:
    server, model_class, _ = provider
    # The first event comes at once, then nothing for 3 s.
    server.enqueue(Reply(text=["Hello ", "world"], delay=3))
    model = model_class(base_url=server.base_url, api_key=API_KEY, timeout=0.3, max_retries=0)
    seen: list[ModelDelta] = []
    started = time.monotonic()
    try:
        with pytest.raises(ModelProviderError, match="timed out reading the response"):
            async for _ in deltas_until_failure(model, seen):
                pass
    finally:
        await model.aclose()
    assert time.monotonic() - started < 2
    assert not seen  # the first event (the role, or message_start) holds no delta
