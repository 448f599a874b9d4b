"""What the HTTP providers share: SSE events off a raw response, short errors.

Both SDKs hand back their raw streaming response (an `httpx2.Response`, the
SDKs' transport); the providers read its server-sent events here and parse the
`data` with orjson themselves instead of building a pydantic model per chunk.
Errors become `ModelProviderError`s with short messages that never carry
request headers (the API key lives only there).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import aiohttp
import anyio
import httpx2
import orjson

from app.compat.httpx2 import aiohttp_response
from app.engine.models.base import ContentDelta, ModelDelta, ModelProviderError, ReasoningDelta
from app.engine.models.pacing import PacedStream, ReadPacer

# A single event may carry a whole answer when a server does not really stream.
MAX_EVENT_BYTES = 16 * 1024 * 1024
_MAX_DETAIL = 300

# Raised while reading a body after the SDK handed it over (it wraps only its own reads);
# aiohttp's own when the body is read off the SDKs' aiohttp transport (`body_chunks`).
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    httpx2.HTTPError,
    aiohttp.ClientError,
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


class SSEvent(NamedTuple):
    """One server-sent event: its name and its data (the `data` lines joined by LF)."""

    event: str
    data: bytes  # bytes as received: orjson parses them without a decode


class SSEStream:
    """The server-sent events of a streaming response, a list per read from the network.

    Read off the raw body (bytes, no text decoding of the whole stream): under load
    many events arrive in one read, and the caller handles them as one batch. Lines
    end in LF, CRLF or CR; comments and `id`/`retry` fields are skipped; an event
    larger than MAX_EVENT_BYTES, or a body that is not `text/event-stream`, raises
    `httpx2.SSEError` (as `httpx2.EventSource` does).

    With a `pacer`, a read off the SDKs' aiohttp transport may be held while the
    event loop is saturated (`ReadPacer`). Iterate it once; `drain` reads what
    follows the last event the caller wanted, and `finish` (called by both, and
    by the caller before the response is closed) ends the pacing.
    """

    def __init__(self, response: httpx2.Response, pacer: ReadPacer | None = None) -> None:
        self._response = response
        self._pacer = pacer
        self._paced: PacedStream | None = None
        self._batches = self._read()

    def __aiter__(self) -> AsyncIterator[list[SSEvent]]:
        return self._batches

    async def _read(self) -> AsyncIterator[list[SSEvent]]:
        response = self._response
        content_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type != "text/event-stream":
            raise httpx2.SSEError(
                f"Expected response with content type 'text/event-stream', got {content_type!r}."
            )
        parser = _SSEParser()
        reader = aiohttp_response(response)
        paced = self._paced = self._track(reader)
        try:
            async for chunk in body_chunks(response):
                # Right after the read, while the connection is still this response's
                # (aiohttp hands it back to the pool once the body is complete).
                if paced is not None and reader is not None and reader.connection is not None:
                    paced.hold()
                batch = parser.feed(chunk)
                if batch:
                    yield batch
            batch = parser.close()
            if batch:
                yield batch
        finally:
            self.finish()

    def _track(self, reader: aiohttp.ClientResponse | None) -> PacedStream | None:
        """The stream's pacing, when it has a pacer and reads off aiohttp."""
        connection = reader.connection if reader is not None else None
        transport = connection.transport if connection is not None else None
        if self._pacer is None or not self._pacer.enabled or transport is None:
            return None
        return self._pacer.track(transport)

    def finish(self) -> None:
        """End the pacing: the transport reads as data arrives again."""
        if self._paced is not None:
            self._paced.close()

    async def drain(self) -> None:
        """Read what is left after the last event, briefly, so the connection can be reused.

        HTTP/1.1 keeps a connection only when its body was read to the end; a server
        that holds the stream open after its final event costs at most 0.1 s.
        """
        self.finish()
        try:
            async with asyncio.timeout(0.1):
                async for _ in self._batches:
                    pass
        except TimeoutError:
            pass  # the server held the stream open: the connection is not reused
        except TRANSPORT_ERRORS:
            pass  # the answer is complete; a failing tail must not turn it into an error


def body_chunks(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The raw body as it arrives, a chunk per read.

    Over the SDKs' aiohttp transport (their choice for many streams, and ours),
    straight from aiohttp's reader: `aiter_raw` reaches it through three async
    generators (httpx2's response, its timing wrapper and the transport's stream),
    three more frames to resume for every read. The SDK's response is still the
    one closed (`aclose`), which releases the connection. Any other transport,
    or a transport that changed shape, reads through `aiter_raw`.
    """
    reader = aiohttp_response(response)
    if reader is not None:
        return reader.content.iter_any()
    return response.aiter_raw()


class _SSEParser:
    def __init__(self) -> None:
        self._rest = b""  # an unfinished line (or a lone CR that may start a CRLF)
        self._event = ""
        self._data: list[bytes] = []
        self._pending = False  # a field was seen since the last dispatch
        self._size = 0

    def feed(self, chunk: bytes) -> list[SSEvent]:
        if self._rest or self._pending or b"\r" in chunk:
            return self._feed_lines(chunk)
        # What the providers send, read whole: LF line ends, events of one `data`
        # line (an `event` line first, for Anthropic) each ending in a blank line,
        # nothing left over from the last read. Anything else takes the line by
        # line path below; so does an event still arriving (`tail`).
        blocks = chunk.split(b"\n\n")
        tail = blocks.pop()
        events: list[SSEvent] = []
        large = len(chunk) > MAX_EVENT_BYTES  # else no block in it can be
        for block in blocks:
            if large:
                self._check_size(len(block))
            if block.startswith(b"data: ") and b"\n" not in block:
                events.append(SSEvent("message", block[6:]))
                continue
            if block.startswith(b"event: "):
                name, _, data = block.partition(b"\n")
                if data.startswith(b"data: ") and b"\n" not in data:
                    events.append(SSEvent(name[7:].decode(errors="replace"), data[6:]))
                    continue
            events.extend(self._lines([*block.split(b"\n"), b""]))
        if tail:
            events.extend(self._feed_lines(tail))
        return events

    def _feed_lines(self, chunk: bytes) -> list[SSEvent]:
        buffer = self._rest + chunk if self._rest else chunk
        lines = buffer.splitlines(keepends=True)  # LF, CRLF and CR only, for bytes
        last = lines[-1] if lines else b""
        if not last.endswith(b"\n"):
            self._rest = lines.pop() if lines else b""  # unfinished, or CR before a LF
        else:
            self._rest = b""
        self._check_size(len(self._rest))
        return self._lines(lines)

    def _check_size(self, pending: int = 0) -> None:
        """The event being read, with `pending` unfinished bytes, within the limit."""
        if self._size + pending > MAX_EVENT_BYTES:
            raise httpx2.SSEError(f"Server-sent event exceeded the {MAX_EVENT_BYTES} byte limit.")

    def close(self) -> list[SSEvent]:
        rest, self._rest = self._rest, b""
        return self._lines(rest.splitlines(keepends=True)) if rest.endswith(b"\r") else []

    def _lines(self, lines: list[bytes]) -> list[SSEvent]:
        events: list[SSEvent] = []
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if not line:
                if self._pending:
                    events.append(SSEvent(self._event or "message", b"\n".join(self._data)))
                self._event, self._data, self._pending, self._size = "", [], False, 0
                continue
            if line.startswith(b":"):
                continue
            self._size += len(line)
            self._check_size()
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                self._data.append(value)
                self._pending = True
            elif name == b"event":
                self._event = value.decode(errors="replace")
                self._pending = True
        return events


class ReadDeltas:
    """The deltas of one network read, adjacent text of one kind (content, or
    reasoning) joined into one delta as it is added: deltas that arrived in one
    read reach the client at the same moment anyway, and a delta per token would
    cost an event per token downstream."""

    __slots__ = ("_deltas", "_kind", "_texts")

    def __init__(self) -> None:
        self._deltas: list[ModelDelta] = []
        self._kind: type[ContentDelta | ReasoningDelta] = ContentDelta
        self._texts: list[str] = []  # text of `_kind` after the last of `_deltas`

    def text(self, kind: type[ContentDelta | ReasoningDelta], text: str) -> None:
        if kind is not self._kind:
            self._flush()
            self._kind = kind
        self._texts.append(text)

    def add(self, delta: ModelDelta) -> None:
        if isinstance(delta, ContentDelta | ReasoningDelta):
            self.text(type(delta), delta.text)
        else:
            self._flush()
            self._deltas.append(delta)

    def take(self) -> list[ModelDelta]:
        """The deltas added since the last call."""
        self._flush()
        deltas, self._deltas = self._deltas, []
        return deltas

    def _flush(self) -> None:
        texts = self._texts
        if texts:
            self._deltas.append(self._kind(texts[0] if len(texts) == 1 else "".join(texts)))
            self._texts = []


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
    if isinstance(exc, httpx2.TimeoutException | aiohttp.ServerTimeoutError):
        return ModelProviderError(f"{provider}: timed out reading the response")
    if isinstance(exc, orjson.JSONDecodeError):
        return ModelProviderError(f"{provider}: invalid JSON in the response stream")
    if isinstance(exc, httpx2.SSEError):
        return ModelProviderError(f"{provider}: {shorten(str(exc))}")
    return ModelProviderError(f"{provider}: connection lost ({type(exc).__name__})")


def shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def safe_name(name: str) -> str:
    """A tool or schema name the APIs accept (`^[a-zA-Z0-9_-]{1,64}$`)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64] or "output"
