"""The SDKs' aiohttp clients as the providers build them: each absolute request
URL parsed once, everything else joined as httpx2 joins it."""

from __future__ import annotations

import httpx2
import pytest

from app.engine.models import anthropic, openai

URL = "http://127.0.0.1:9/v1/chat/completions"


@pytest.mark.parametrize("client_class", [openai.HTTPClient, anthropic.HTTPClient])
async def test_an_absolute_url_is_parsed_once(client_class: type[httpx2.AsyncClient]) -> None:
    client = client_class()
    plain = httpx2.AsyncClient()
    try:
        first = client._merge_url(URL)
        assert first == plain._merge_url(URL)
        assert client._merge_url(URL) is first  # the same parsed URL, not a new parse
        assert client._merge_url(URL + "?x=1") == plain._merge_url(URL + "?x=1")
        assert client.build_request("POST", URL).url == httpx2.URL(URL)
    finally:
        await client.aclose()
        await plain.aclose()


@pytest.mark.parametrize("client_class", [openai.HTTPClient, anthropic.HTTPClient])
async def test_relative_urls_are_joined_to_the_base_url(
    client_class: type[httpx2.AsyncClient],
) -> None:
    client = client_class(base_url="http://127.0.0.1:9/api/")
    try:
        for url in ("v1/messages", httpx2.URL("v1/messages")):
            assert client._merge_url(url) == httpx2.URL("http://127.0.0.1:9/api/v1/messages")
        assert client._merge_url(httpx2.URL(URL)) == httpx2.URL(URL)
    finally:
        await client.aclose()
