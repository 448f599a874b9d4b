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
