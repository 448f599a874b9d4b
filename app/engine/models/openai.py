"""Chat Completions over the official OpenAI SDK, for OpenAI and any compatible server.

The SDK owns the transport, auth, retries (429, 5xx and timeouts with backoff,
honouring `retry-after`) and status errors. This module builds the JSON body
from the engine's canonical messages (already the Chat Completions shape) and
sends it, encoded once with orjson, with the client's own `post` (the SDK's
documented way to make a request it has no method for), which skips re-walking
every message against the SDK's typed parameters; it reads the raw SSE stream
itself, one orjson parse per `data:` line instead of a pydantic model per chunk.
A request with `stream=False` (a blocking run) asks for the whole completion in
one JSON body, as the OpenAI Agents SDK's `Runner.run` and Agno's non-streaming
`run` do.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import Any

import httpx2
import openai
import orjson

from app.compat.httpx2 import MergedHeaders, ParsedURLs
from app.compat.openai import Client
from app.engine import jsontext
from app.engine.models.base import (
    ContentDelta,
    FinishDelta,
    Message,
    ModelDelta,
    ModelProviderError,
    ModelRequest,
    ReasoningDelta,
    ToolCallDelta,
    UsageDelta,
)
from app.engine.models.http import (
    CONNECTION_LIMITS,
    ReadDeltas,
    SDKErrors,
    SSEStream,
    SSEvent,
    provider_errors,
    safe_name,
    stream_error,
)
from app.engine.models.pacing import ReadPacer

PROVIDER = "openai"
SDK_ERRORS = SDKErrors(
    status=openai.APIStatusError,
    timeout=openai.APITimeoutError,
    connection=openai.APIConnectionError,
    base=openai.OpenAIError,
)
# Sent when no key is configured: servers such as Ollama or vLLM need none.
PLACEHOLDER_API_KEY = "not-needed"
DEFAULT_BASE_URL = "https://api.openai.com/v1"

# Keys of `settings` that are not body fields (the body's own are set from the request);
# `extra_body` is merged into the body last, overriding.
_NOT_SETTINGS = frozenset(
    {"self", "model", "messages", "stream", "stream_options", "tools", "functions",
     "function_call", "extra_headers", "extra_query", "extra_body", "timeout"}
)  # fmt: skip
# Canonical message fields that are not part of the Chat Completions input.
_LOCAL_MESSAGE_KEYS = ("reasoning_content", "reasoning")
_FINISH_REASONS = {"function_call": "tool_calls"}


class HTTPClient(ParsedURLs, MergedHeaders, openai.DefaultAioHttpClient):
    """The SDK's aiohttp client, parsing each request URL and merging each set of
    request headers once."""


# What the SDK adds to every request from the environment, whatever the base URL.
_ENVIRONMENT_HEADERS = ("OpenAI-Organization", "OpenAI-Project")


def own_headers(api_key: str, headers: dict[str, str]) -> dict[str, Any]:
    """Default headers for a client of another endpoint than the environment's:
    `headers` and its key, and the SDK's headers from the environment
    (`OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`, `OPENAI_CUSTOM_HEADERS`) omitted, with
    the SDK's own `Omit` marker (its constructor reads them whenever no value is
    given, and has no switch to stop it)."""
    custom = os.environ.get("OPENAI_CUSTOM_HEADERS", "")
    names = [line.partition(":")[0].strip() for line in custom.splitlines() if ":" in line]
    omitted = {name: openai.Omit() for name in (*_ENVIRONMENT_HEADERS, *names) if name}
    # An explicit Authorization makes the SDK drop the environment's (and carries the key).
    return {**omitted, **headers, "Authorization": f"Bearer {api_key}"}


class OpenAIChatModel:
    """A ModelClient over `POST {base_url}/chat/completions` with `stream: true`.

    `api_key` None reads `OPENAI_API_KEY`, then falls back to a placeholder
    (keyless local servers); `base_url` None reads `OPENAI_BASE_URL`, then
    the OpenAI API. With `environment=False` (a named profile: another
    endpoint) nothing comes from the environment: the endpoint gets its own key
    and `headers`, never the organization, project or custom headers that the
    SDK would add from `OPENAI_*` variables. One SDK client per instance, reused
    for every call, over the SDK's aiohttp transport (its choice for many
    concurrent streams: reading a chunk costs far less than over the default
    transport). With a `pacer`, the stream's reads wait while the event loop is
    saturated (`ReadPacer`).
    """

    # The media Chat Completions takes: images, wav/mp3 audio and PDF files, inline.
    media = frozenset({"image", "audio", "file_pdf"})

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        timeout: float = 60,
        max_retries: int = 2,
        pacer: ReadPacer | None = None,
        environment: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        if environment:
            key = api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_API_KEY
            default_headers: dict[str, Any] = dict(headers or {})
        else:
            key = api_key or PLACEHOLDER_API_KEY
            base_url = base_url or DEFAULT_BASE_URL
            default_headers = own_headers(key, dict(headers or {}))
        self._pacer = pacer
        self._client = Client(
            api_key=key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            http_client=HTTPClient(limits=CONNECTION_LIMITS),
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelDelta]:
        with provider_errors(PROVIDER, SDK_ERRORS, self._client.base_url.host):
            if not request.stream:
                # The SDK reads the whole body before handing the response back.
                whole: httpx2.Response = await self._client.post(
                    "/chat/completions", cast_to=httpx2.Response, content=encode_body(request)
                )
                for delta in parse_completion(orjson.loads(whole.content)):
                    yield delta
                return
            # cast_to=Response with stream=True: the SDK sends (retrying, raising
            # status errors) and hands back the unread response.
            response: httpx2.Response = await self._client.post(
                "/chat/completions",
                cast_to=httpx2.Response,
                content=encode_body(request),
                stream=True,
            )
            events = SSEStream(response, self._pacer)
            try:
                async for delta in parse_stream(events):
                    yield delta
                await events.drain()
            finally:
                events.finish()
                await response.aclose()

    async def aclose(self) -> None:
        await self._client.close()


def encode_body(request: ModelRequest) -> bytes:
    """The request's JSON body, encoded once with orjson (the SDK would encode a
    `body` dict with the standard library's json); sent as the SDK's `content`,
    with its usual `Content-Type: application/json`."""
    return orjson.dumps(request_body(request))


def request_body(request: ModelRequest) -> dict[str, Any]:
    """The JSON body of one `POST /chat/completions`, streamed unless `request.stream` is False."""
    body: dict[str, Any] = {
        key: value
        for key, value in request.settings.items()
        if value is not None and key not in _NOT_SETTINGS
    }
    if not request.tools:  # the API refuses these without tools
        body.pop("tool_choice", None)
        body.pop("parallel_tool_calls", None)
    else:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                },
            }
            for tool in request.tools
        ]
    if request.output_schema is not None:
        schema = request.output_schema
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": safe_name(schema.name),
                "schema": schema.schema,
                "strict": schema.strict,
            },
        }
    body.update(
        model=request.model,
        messages=[wire_message(message) for message in request.messages],
    )
    if request.stream:
        body.update(stream=True, stream_options={"include_usage": True})
    body.update(request.settings.get("extra_body") or {})
    return body


def wire_message(message: Message) -> Message:
    """A canonical message as Chat Completions input (usually the same dict)."""
    content = message.get("content")
    needs_text = message.get("role") == "tool" and not isinstance(content, str | list)
    if not needs_text and not any(key in message for key in _LOCAL_MESSAGE_KEYS):
        return message
    wire = {key: value for key, value in message.items() if key not in _LOCAL_MESSAGE_KEYS}
    if needs_text:
        wire["content"] = "" if content is None else jsontext.dumps(content).decode()
    return wire


async def parse_stream(
    batches: AsyncIterable[list[SSEvent]],
) -> AsyncIterator[ModelDelta]:
    """Deltas from `chat.completion.chunk` events, up to `data: [DONE]`; the text of
    the chunks that arrived together comes as one delta.

    Usage and the finish reason come last, once, whatever order the server
    sent them in. A stream that ends with neither `[DONE]` nor a finish reason
    was cut off and raises.
    """
    state = _ChunkReader()
    done = False
    async for batch in batches:
        try:
            for event in batch:
                data = event.data
                if data == b"[DONE]":
                    done = True
                    break
                if not data:
                    continue
                chunk = orjson.loads(data)
                if not isinstance(chunk, dict):
                    raise ModelProviderError(
                        f"{PROVIDER}: unexpected payload in the response stream"
                    )
                if chunk.get("error") or event.event == "error":
                    raise stream_error(PROVIDER, chunk)
                state.feed(chunk)
        finally:
            # What came before a failure in the same read still reaches the caller.
            for delta in state.take():
                yield delta
        if done:
            break
    if not done and state.finish_reason is None:
        raise ModelProviderError(f"{PROVIDER}: the response stream ended early")
    for delta in state.close():
        yield delta


def parse_completion(payload: Any) -> Iterator[ModelDelta]:
    """Deltas from one whole `chat.completion` body, in the order a stream sends them."""
    if not isinstance(payload, dict):
        raise ModelProviderError(f"{PROVIDER}: unexpected payload in the response")
    if payload.get("error"):
        raise stream_error(PROVIDER, payload)
    choices = payload.get("choices")
    first = next(
        (c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0), None
    ) if isinstance(choices, list) else None  # fmt: skip
    if first is None or not isinstance(first.get("message"), dict):
        raise ModelProviderError(f"{PROVIDER}: the response has no message")
    # The message has the fields of a delta, tool calls whole: read it as one chunk.
    chunk = {
        "usage": payload.get("usage"),
        "choices": [{"delta": first["message"], "finish_reason": first.get("finish_reason")}],
    }
    state = _ChunkReader()
    state.feed(chunk)
    yield from state.take()
    yield from state.close()


class _ChunkReader:
    """Turns chunk payloads into deltas, remembering what only comes once.

    `feed` collects the deltas of the chunks that arrived together (`ReadDeltas`:
    adjacent text joined into one delta); `take` hands them over.
    """

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.usage: UsageDelta | None = None
        self._named: dict[int, tuple[bool, bool]] = {}  # index -> (id sent, name sent)
        self._read = ReadDeltas()

    def feed(self, chunk: dict[str, Any]) -> None:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = UsageDelta(
                input_tokens=usage.get("prompt_tokens") or 0,
                output_tokens=usage.get("completion_tokens") or 0,
            )
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # n > 1 is not supported: the first choice is the answer
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                self._read.text(ReasoningDelta, reasoning)
            content = delta.get("content")
            if content:
                self._read.text(ContentDelta, content)
            for position, call in enumerate(delta.get("tool_calls") or ()):
                self._read.add(self._tool_call(position, call))
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = _FINISH_REASONS.get(reason, reason)

    def take(self) -> list[ModelDelta]:
        """The deltas fed since the last call."""
        return self._read.take()

    def _tool_call(self, position: int, call: dict[str, Any]) -> ToolCallDelta:
        index = call.get("index")
        if not isinstance(index, int):
            index = position  # servers that omit it send whole calls in one chunk
        function = call.get("function") or {}
        id_sent, name_sent = self._named.get(index, (False, False))
        # id and name once, on the first fragment, even from servers that repeat them
        call_id = None if id_sent else call.get("id") or None
        name = None if name_sent else function.get("name") or None
        self._named[index] = (id_sent or call_id is not None, name_sent or name is not None)
        return ToolCallDelta(
            index=index, id=call_id, name=name, arguments=function.get("arguments") or ""
        )

    def close(self) -> Iterator[ModelDelta]:
        if self.usage is not None:
            yield self.usage
        yield FinishDelta(self.finish_reason or ("tool_calls" if self._named else "stop"))
