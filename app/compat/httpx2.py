"""httpx2 and the SDKs' aiohttp transport: the aiohttp response under an httpx2 response.

The model providers read a streaming answer straight off aiohttp's reader, and
pace its reads by pausing the connection's transport while the event loop is
saturated (`app.engine.models.pacing`): with 1,024 streams at once, that keeps
the p99 latency bar. Neither library exposes the aiohttp response: httpx2's
client wraps the transport's stream (`BoundAsyncStream._stream`), and the
stream of the aiohttp transport the openai and anthropic SDKs vendor keeps it
as `_aiohttp_response`. Outside the versions below, or should either shape
change, `aiohttp_response` answers None and the providers read through httpx2's
public `aiter_raw`, unpaced.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx2

from app.compat import supported

# The versions these names were checked against (tests/compat/test_httpx2.py).
HTTPX2 = ("2.17", "2.18")
OPENAI = ("3.54", "3.64")
ANTHROPIC = ("2.12", "2.18")

ENABLED = (
    supported("httpx2", *HTTPX2, what="BoundAsyncStream._stream")
    and supported("openai", *OPENAI, what="AiohttpResponseStream._aiohttp_response")
    and supported("anthropic", *ANTHROPIC, what="AiohttpResponseStream._aiohttp_response")
)


def aiohttp_response(response: Any) -> aiohttp.ClientResponse | None:
    """The aiohttp response under an httpx2 response from the SDKs' aiohttp
    transport; None for any other transport, or versions not checked."""
    if not ENABLED:
        return None
    wrapped = getattr(response.stream, "_stream", None)
    reader = getattr(wrapped, "_aiohttp_response", None)
    return reader if isinstance(reader, aiohttp.ClientResponse) else None


# httpx2's request building, for the SDKs' clients: `AsyncClient._merge_url` and
# `AsyncClient._merge_headers`, overridden to remember their answers (checked
# against the HTTPX2 versions above; outside them the overrides pass through).
MERGES = supported("httpx2", *HTTPX2, what="AsyncClient._merge_url and _merge_headers")
_MAX_URLS = 64
_MAX_HEADER_SETS = 64


class ParsedURLs(httpx2.AsyncClient):
    """An httpx2 client that parses each absolute request URL once.

    The SDKs build each request's URL, turn it into a string and hand it to
    their httpx2 client, which parses it again to join it to its own base URL
    (pure Python, on every model call). The SDKs send absolute URLs, a handful
    per client, and a parsed URL is immutable: kept here, per string. Mixed into
    the SDKs' aiohttp clients (`class C(ParsedURLs, sdk.DefaultAioHttpClient)`).
    """

    def _merge_url(self, url: httpx2.URL | str) -> httpx2.URL:
        if not MERGES or not isinstance(url, str):
            return super()._merge_url(url)
        cache: dict[str, httpx2.URL] = self.__dict__.setdefault("_parsed_urls", {})
        parsed = cache.get(url)
        if parsed is None:
            parsed = httpx2.URL(url)
            if not parsed.is_absolute_url:
                return super()._merge_url(parsed)
            if len(cache) >= _MAX_URLS:
                cache.clear()
            cache[url] = parsed
        return parsed


class MergedHeaders(httpx2.AsyncClient):
    """An httpx2 client that merges each set of request headers with its own once.

    The SDKs send the same dozen headers with every request (auth, user agent,
    their platform headers, the retry count) as a list of pairs, and httpx2 merges
    them into a copy of the client's headers one at a time, scanning the copy for
    each. The merged headers are kept per list and client headers; each request
    gets a copy of them (a request adds its own `Host` and `Content-Length`).
    Mixed in like `ParsedURLs`.
    """

    def _merge_headers(self, headers: Any = None) -> Any:
        if not MERGES or not isinstance(headers, list):
            return super()._merge_headers(headers)
        cache: dict[Any, httpx2.Headers] = self.__dict__.setdefault("_merged_headers", {})
        key = (tuple(headers), tuple(self.headers.raw))
        try:
            merged = cache.get(key)
        except TypeError:  # a value that cannot be a key
            return super()._merge_headers(headers)
        if merged is None:
            merged = httpx2.Headers(super()._merge_headers(headers))
            if len(cache) >= _MAX_HEADER_SETS:
                cache.clear()
            cache[key] = merged
        return httpx2.Headers(merged)
