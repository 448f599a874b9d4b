"""The SDKs' aiohttp clients as the providers build them: each absolute request
URL parsed once, everything else joined as httpx2 joins it; each set of request
headers merged with the client's once; the openai client's URLs built once per path.

Fails when an upgrade of httpx2 or openai leaves the versions these private names
were checked against (app/compat/httpx2.py, app/compat/openai.py)."""

from __future__ import annotations

import httpx2
import pytest

from app.compat import httpx2 as compat_httpx2
from app.compat import openai as compat_openai
from app.engine.models import anthropic, openai

URL = "http://127.0.0.1:9/v1/chat/completions"


def test_the_installed_versions_are_the_ones_checked() -> None:
    assert compat_httpx2.MERGES, "check ParsedURLs and MergedHeaders against the new httpx2"
    assert compat_openai.ENABLED, "check Client._prepare_url against the new openai"


async def test_the_openai_client_builds_each_url_once() -> None:
    client = compat_openai.Client(api_key="k", base_url="http://127.0.0.1:9/v1")
    try:
        first = client._prepare_url("/chat/completions")
        assert first == httpx2.URL(URL)
        assert client._prepare_url("/chat/completions") is first
        client.base_url = httpx2.URL("http://127.0.0.1:9/v2/")
        assert client._prepare_url("/chat/completions") == httpx2.URL(
            "http://127.0.0.1:9/v2/chat/completions"
        )
        assert client.user_agent.startswith("AsyncOpenAI/Python ")
    finally:
        await client.close()


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


SDK_HEADERS = [
    ("Authorization", "Bearer k"),
    ("Accept", "application/json"),
    ("User-Agent", "SDK/1"),
    ("X-Stainless-Retry-Count", "0"),
]


@pytest.mark.parametrize("client_class", [openai.HTTPClient, anthropic.HTTPClient])
async def test_request_headers_are_merged_once_per_set(
    client_class: type[httpx2.AsyncClient],
) -> None:
    client = client_class()
    plain = httpx2.AsyncClient()
    try:
        expected = plain._merge_headers(list(SDK_HEADERS))
        first = client._merge_headers(list(SDK_HEADERS))
        assert first == expected
        assert list(first.multi_items()) == list(expected.multi_items())  # type: ignore[union-attr]
        first["X-Added"] = "1"  # each request gets its own copy
        second = client._merge_headers(list(SDK_HEADERS))
        assert second == expected and second is not first
        assert len(client.__dict__["_merged_headers"]) == 1
        retry = [*SDK_HEADERS[:3], ("X-Stainless-Retry-Count", "1")]
        assert client._merge_headers(retry)["x-stainless-retry-count"] == "1"
        assert client._merge_headers({"A": "b"}) == plain._merge_headers({"A": "b"})
        client.headers["X-Client"] = "2"  # the client's own headers are part of the key
        assert client._merge_headers(list(SDK_HEADERS))["x-client"] == "2"
        request = client.build_request("POST", URL, headers=list(SDK_HEADERS), content=b"{}")
        assert request.headers["authorization"] == "Bearer k"
        assert request.headers["content-length"] == "2"
        assert "content-length" not in client._merge_headers(list(SDK_HEADERS))
    finally:
        await client.aclose()
        await plain.aclose()
