"""The openai SDK's client, remembering the URLs it built.

The SDK parses each request's path and joins it to `base_url` (two URL parses
in pure Python) on every request, for the one path a provider calls. `Client`
overrides the SDK's private `AsyncOpenAI._prepare_url` to keep its answers, per
path and base URL; outside the versions below it passes through.
"""

from __future__ import annotations

import httpx2
import openai

from app.compat import supported
from app.compat.httpx2 import OPENAI

ENABLED = supported("openai", *OPENAI, what="AsyncOpenAI._prepare_url")
_MAX_URLS = 64


class Client(openai.AsyncOpenAI):
    @property
    def user_agent(self) -> str:
        # The SDK names the client's class here: servers see the SDK's own name.
        return f"{openai.AsyncOpenAI.__name__}/Python {self._version}"

    def _prepare_url(self, url: str) -> httpx2.URL:
        if not ENABLED:
            return super()._prepare_url(url)
        base = self.base_url  # may be set again: an entry holds the base it was built on
        urls: dict[str, tuple[httpx2.URL, httpx2.URL]] = self.__dict__.setdefault("_urls", {})
        entry = urls.get(url)
        if entry is None or entry[0] is not base:
            if len(urls) >= _MAX_URLS:
                urls.clear()
            entry = urls[url] = (base, super()._prepare_url(url))
        return entry[1]
