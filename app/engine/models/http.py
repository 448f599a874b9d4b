"""What the HTTP providers share: SSE events off a raw response, short errors.

Both SDKs hand back their raw streaming response (an `httpx2.Response`, the
SDKs' transport); the providers read its server-sent events here and parse the
`data` with orjson themselves instead of building a pydantic model per chunk.
Errors become `ModelProviderError`s with short messages that never carry
request headers (the API key lives only there).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import orjson

from app.engine.models.base import ModelProviderError

# A single event may carry a whole answer when a server does not really stream.
MAX_EVENT_BYTES = 16 * 1024 * 1024
_MAX_DETAIL = 300

# Raised while reading a body after the SDK handed it over (it wraps only its own reads).
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    httpx2.HTTPError,
    httpx2.StreamError,
    ssl.SSLError,
    anyio.EndOfStream,
    orjson.JSONDecodeError,
)


# Streams open at once per SDK client: one per run in flight, with room to spare
# (the SDKs' default of 1,000 would queue runs behind each other at high concurrency).
CONNECTION_LIMITS = httpx2.Limits(max_connections=8192, max_keepalive_connections=1024)


@dataclass(frozen=True, slots=True)
class SDKErrors:
    """The exception classes of one provider SDK, for `provider_errors`."""

    status: type[Exception]  # carries `status_code` and `body`
    timeout: type[Exception]
    connection: type[Exception]
    base: type[Exception]


@contextmanager
def provider_errors(provider: str, sdk: SDKErrors, host: str) -> Iterator[None]:
    """Turn an SDK's and the transport's errors into short `ModelProviderError`s."""
    try:
        yield
    except sdk.status as exc:
        raise status_error(provider, exc.status_code, exc.body) from exc  # type: ignore[attr-defined]
    except sdk.timeout as exc:
        if _refused(exc):
            raise ModelProviderError(f"{provider}: could not connect to {host}") from exc
        raise ModelProviderError(f"{provider}: request timed out") from exc
    except sdk.connection as exc:
        raise ModelProviderError(f"{provider}: could not connect to {host}") from exc
    except sdk.base as exc:
        raise ModelProviderError(f"{provider}: {shorten(str(exc))}") from exc
    except TRANSPORT_ERRORS as exc:
        raise transport_error(provider, exc) from exc


async def sse_events(response: httpx2.Response) -> AsyncIterator[httpx2.ServerSentEvent]:
    """The server-sent events of a streaming response, as they arrive."""
    async for event in httpx2.EventSource(response, max_event_size=MAX_EVENT_BYTES):
        yield event


def error_detail(body: object) -> str | None:
    """The human message of an error body: `{"error": {"message"}}` or `{"message"}`."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping):
            message = error.get("message")
            return message if isinstance(message, str) and message else None
        if isinstance(error, str) and error:
            return error
    return None


def status_error(provider: str, status: int, body: object) -> ModelProviderError:
    """An HTTP error status as a short ModelProviderError."""
    if status in (401, 403):
        # Servers echo (part of) a rejected key in these messages: leave them out.
        return ModelProviderError(
            f"{provider}: HTTP {status}, authentication failed (check the API key)",
            status_code=status,
        )
    detail = error_detail(body)
    suffix = f": {shorten(detail)}" if detail else ""
    return ModelProviderError(f"{provider}: HTTP {status}{suffix}", status_code=status)


def stream_error(
    provider: str, payload: Mapping[str, Any], status: int | None = None
) -> ModelProviderError:
    """An error the server sent inside an otherwise successful stream.

    The status is the caller's guess, else an integer `error.code` (vLLM, LiteLLM).
    """
    error = payload.get("error")
    code = error.get("code") if isinstance(error, Mapping) else None
    if status is None and isinstance(code, int) and 400 <= code < 600:
        status = code
    detail = error_detail(payload) or "error in stream"
    return ModelProviderError(f"{provider}: {shorten(detail)}", status_code=status)


def _refused(exc: BaseException) -> bool:
    """A "timeout" that is a refused or failed connection underneath: the aiohttp
    transport reports every connector error as a connect timeout."""
    cause = exc.__cause__ or exc.__context__
    seen = 0
    while cause is not None and seen < 8:
        if isinstance(cause, OSError) and not isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return False


def transport_error(provider: str, exc: BaseException) -> ModelProviderError:
    """A failure while reading the body: timeout, broken connection, bad JSON or SSE."""
    if isinstance(exc, httpx2.TimeoutException):
        return ModelProviderError(f"{provider}: timed out reading the response")
    if isinstance(exc, orjson.JSONDecodeError):
        return ModelProviderError(f"{provider}: invalid JSON in the response stream")
    if isinstance(exc, httpx2.SSEError):
        return ModelProviderError(f"{provider}: {shorten(str(exc))}")
    return ModelProviderError(f"{provider}: connection lost ({type(exc).__name__})")


def shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


async def drain(events: AsyncIterator[httpx2.ServerSentEvent]) -> None:
    """Read what is left after the last event, briefly, so the connection can be reused.

    HTTP/1.1 keeps a connection only when its body was read to the end; a server
    that holds the stream open after its final event costs at most 0.1 s.
    """
    try:
        with anyio.move_on_after(0.1):
            async for _ in events:
                pass
    except TRANSPORT_ERRORS:
        pass  # the answer is complete; a failing tail must not turn it into an error


def safe_name(name: str) -> str:
    """A tool or schema name the APIs accept (`^[a-zA-Z0-9_-]{1,64}$`)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64] or "output"
