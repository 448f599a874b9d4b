"""The aiohttp response under the SDKs' httpx2 responses (app/compat/httpx2.py).

Fails when an upgrade of httpx2, openai or anthropic leaves the versions the
private names were checked against, or changes them: the providers would then
read through `aiter_raw`, unpaced (correct, but over the 1,024-stream bar)."""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx2
import orjson
import pytest

from app.compat import httpx2 as compat
from app.engine.models.anthropic import AnthropicModel
from app.engine.models.openai import OpenAIChatModel
from tests.fakes import FakeAnthropicServer, FakeOpenAIServer, Reply
from tests.providers.helpers import API_KEY, ask


def test_the_installed_versions_are_the_ones_checked() -> None:
    assert compat.ENABLED, "check aiohttp_response against the new version, then widen its range"


@pytest.mark.parametrize("model_class", [OpenAIChatModel, AnthropicModel])
async def test_an_sdk_response_gives_its_aiohttp_response(
    model_class: type[Any],
) -> None:
    server_class = FakeOpenAIServer if model_class is OpenAIChatModel else FakeAnthropicServer
    async with server_class() as server:
        server.enqueue(Reply(text="Hello world"))
        model = model_class(base_url=server.base_url, api_key=API_KEY)
        path = "/chat/completions" if model_class is OpenAIChatModel else "/v1/messages"
        body = {"model": "m", "max_tokens": 5, "stream": True, "messages": [ask().messages[0]]}
        try:
            response: httpx2.Response = await model._client.post(
                path, cast_to=httpx2.Response, content=orjson.dumps(body), stream=True
            )
            try:
                reader = compat.aiohttp_response(response)
                assert isinstance(reader, aiohttp.ClientResponse)
                text = b"".join([chunk async for chunk in reader.content.iter_any()])
            finally:
                await response.aclose()
        finally:
            await model.aclose()
    assert b"Hello " in text and b"world" in text


async def test_any_other_transport_has_none() -> None:
    response = httpx2.Response(200, content=b"data: x\n\n")
    assert compat.aiohttp_response(response) is None
