"""Claude over the Messages API with the official Anthropic SDK.

The SDK owns the transport, auth, retries (429, 5xx, 529 and timeouts with
backoff) and status errors. This module translates the engine's canonical
messages (`anthropic_messages.py`), asks for a stream and reads its raw SSE
events itself with orjson: text and thinking deltas, tool inputs streamed as
`input_json_delta`, usage from `message_start` and `message_delta`.

Structured output is a forced tool named after the output schema; its input
JSON streams out as content, not as a tool call.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import Any

import anthropic
import orjson
from anthropic.resources.messages import AsyncMessages

from app.compat.httpx2 import MergedHeaders, ParsedURLs
from app.engine.models.anthropic_messages import output_tool, tool_choice, translate
from app.engine.models.base import (
    ContentDelta,
    FinishDelta,
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
    stream_error,
)
from app.engine.models.pacing import ReadPacer

PROVIDER = "anthropic"
SDK_ERRORS = SDKErrors(
    status=anthropic.APIStatusError,
    timeout=anthropic.APITimeoutError,
    connection=anthropic.APIConnectionError,
    base=anthropic.AnthropicError,
)
DEFAULT_MAX_TOKENS = 4096
# Sent when no key is configured, so that the SDK never looks for credential files.
PLACEHOLDER_API_KEY = "not-configured"
DEFAULT_BASE_URL = "https://api.anthropic.com"

_NOT_SETTINGS = frozenset(
    {"self", "model", "messages", "system", "tools", "stream", "extra_headers",
     "extra_query", "extra_body", "timeout"}
)  # fmt: skip
# Settings the SDK takes as arguments; others (temperature, top_p, top_k...) go in `extra_body`.
SDK_SETTINGS = frozenset(inspect.signature(AsyncMessages.create).parameters) - _NOT_SETTINGS
# Chat Completions settings the Messages API has no counterpart for (it rejects unknown fields).
_OPENAI_ONLY = frozenset(
    {"seed", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
     "n", "response_format", "reasoning_effort", "store", "verbosity", "user", "modalities",
     "prediction", "prompt_cache_key", "safety_identifier", "web_search_options", "audio"}
)  # fmt: skip
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class HTTPClient(ParsedURLs, MergedHeaders, anthropic.DefaultAioHttpClient):
    """The SDK's aiohttp client, parsing each request URL and merging each set of
    request headers once."""


class AnthropicModel:
    """A ModelClient over `POST {base_url}/v1/messages` with `stream: true`.

    `api_key` None reads `ANTHROPIC_API_KEY`; `base_url` None reads
    `ANTHROPIC_BASE_URL`, then the Anthropic API. One SDK client per instance;
    with a `pacer`, the stream's reads wait while the event loop is saturated.
    """

    # The media the Messages API takes: images, and PDF or text files as documents.
    media = frozenset({"image", "file_pdf", "file_pdf_url", "file_text"})

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float = 60,
        max_retries: int = 2,
        pacer: ReadPacer | None = None,
        environment: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_headers: dict[str, Any] = dict(headers or {})
        if environment:
            key = api_key or os.environ.get("ANTHROPIC_API_KEY") or PLACEHOLDER_API_KEY
        else:
            # Another endpoint (a profile): nothing from the environment reaches it.
            # The SDK adds ANTHROPIC_CUSTOM_HEADERS whatever the base URL: omitted with
            # its own marker; an explicit key already keeps its credential variables out.
            key = api_key or PLACEHOLDER_API_KEY
            base_url = base_url or DEFAULT_BASE_URL
            custom = os.environ.get("ANTHROPIC_CUSTOM_HEADERS", "")
            names = [line.partition(":")[0].strip() for line in custom.splitlines() if ":" in line]
            default_headers = {
                **{name: anthropic.Omit() for name in names if name},
                **default_headers,
            }
        self._pacer = pacer
        self._client = anthropic.AsyncAnthropic(
            api_key=key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            # the SDK's transport for many concurrent streams (as for OpenAI)
            http_client=HTTPClient(limits=CONNECTION_LIMITS),
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelDelta]:
        kwargs, output_name = request_kwargs(request)
        create = self._client.messages.with_streaming_response.create
        with provider_errors(PROVIDER, SDK_ERRORS, self._client.base_url.host):
            async with create(**kwargs) as response:
                events = SSEStream(response.http_response, self._pacer)
                try:
                    async for delta in parse_stream(events, output_name):
                        yield delta
                    await events.drain()
                finally:
                    events.finish()  # before the response is closed

    async def aclose(self) -> None:
        await self._client.close()


def request_kwargs(request: ModelRequest) -> tuple[dict[str, Any], str | None]:
    """The arguments of `messages.create`, and the output tool's name if there is one."""
    settings = {key: value for key, value in request.settings.items() if value is not None}
    extra_body: dict[str, Any] = dict(settings.pop("extra_body", None) or {})
    if "max_completion_tokens" in settings:
        settings.setdefault("max_tokens", settings.pop("max_completion_tokens"))
    if (stop := settings.pop("stop", None)) is not None:
        settings.setdefault("stop_sequences", [stop] if isinstance(stop, str) else list(stop))
    parallel = settings.pop("parallel_tool_calls", None)
    kwargs: dict[str, Any] = {}
    for key, value in settings.items():
        if key in _NOT_SETTINGS or key in _OPENAI_ONLY:
            continue
        if key in SDK_SETTINGS:
            kwargs[key] = value
        else:
            extra_body[key] = value
    kwargs.setdefault("max_tokens", DEFAULT_MAX_TOKENS)

    system, messages = translate(request.messages)
    tools: list[dict[str, Any]] = [
        {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
        for tool in request.tools
    ]
    output_name = None
    if request.output_schema is not None:
        forced = output_tool(request.output_schema, {tool["name"] for tool in tools})
        output_name = forced["name"]
        tools.append(forced)
    choice = tool_choice(
        kwargs.pop("tool_choice", None),
        output_name=output_name,
        other_tools=bool(request.tools),
        thinking=_thinking_enabled(kwargs.get("thinking")),
        parallel=parallel,
    )
    if choice is not None and tools:
        kwargs["tool_choice"] = choice
    if tools:
        kwargs["tools"] = tools
    if system:
        kwargs["system"] = system
    if extra_body:
        kwargs["extra_body"] = extra_body
    kwargs.update(model=request.model, messages=messages, stream=True)
    return kwargs, output_name


def _thinking_enabled(thinking: object) -> bool:
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


async def parse_stream(
    batches: AsyncIterable[list[SSEvent]], output_name: str | None
) -> AsyncIterator[ModelDelta]:
    """Deltas from Messages API stream events, up to `message_stop`; the text of the
    events that arrived together comes as one delta (`ReadDeltas`).

    Usage and the finish reason come last, once. A stream that ends before
    `message_stop` was cut off and raises.
    """
    reader = _EventReader(output_name)
    read = ReadDeltas()
    stopped = False
    async for batch in batches:
        try:
            for event in batch:
                if event.event == "ping" or not event.data:
                    continue
                payload = orjson.loads(event.data)
                if not isinstance(payload, dict):
                    raise ModelProviderError(
                        f"{PROVIDER}: unexpected payload in the response stream"
                    )
                kind = payload.get("type") or event.event
                if kind == "error":
                    error = payload.get("error")
                    error_type = error.get("type") if isinstance(error, dict) else None
                    raise stream_error(PROVIDER, payload, _ERROR_STATUS.get(str(error_type)))
                if kind == "message_stop":
                    stopped = True
                    break
                for delta in reader.feed(kind, payload):
                    read.add(delta)
        finally:
            # What came before a failure in the same read still reaches the caller.
            for delta in read.take():
                yield delta
        if stopped:
            break
    if not stopped:
        raise ModelProviderError(f"{PROVIDER}: the response stream ended early")
    for delta in reader.close():
        yield delta


class _EventReader:
    """Turns stream events into deltas, remembering what each content block is."""

    def __init__(self, output_name: str | None) -> None:
        self.output_name = output_name
        self.blocks: dict[int, int | None] = {}  # tool_use block -> tool call index (None: output)
        self.tool_calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.stop_reason: str | None = None

    def feed(self, kind: str, payload: dict[str, Any]) -> Iterator[ModelDelta]:
        if kind == "content_block_delta":
            yield from self._delta(payload.get("index", 0), payload.get("delta") or {})
        elif kind == "content_block_start":
            yield from self._start(payload.get("index", 0), payload.get("content_block") or {})
        elif kind == "message_start":
            self._usage((payload.get("message") or {}).get("usage"))
        elif kind == "message_delta":
            self.stop_reason = (payload.get("delta") or {}).get("stop_reason") or self.stop_reason
            self._usage(payload.get("usage"))

    def _start(self, index: int, block: dict[str, Any]) -> Iterator[ModelDelta]:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            yield ContentDelta(block["text"])
        elif kind == "thinking" and block.get("thinking"):
            yield ReasoningDelta(block["thinking"])
        elif kind == "tool_use":
            initial = orjson.dumps(block["input"]).decode() if block.get("input") else ""
            if block.get("name") == self.output_name:
                self.blocks[index] = None
                if initial:
                    yield ContentDelta(initial)
                return
            self.blocks[index] = call = self.tool_calls
            self.tool_calls += 1
            yield ToolCallDelta(call, id=block.get("id"), name=block.get("name"), arguments=initial)

    def _delta(self, index: int, delta: dict[str, Any]) -> Iterator[ModelDelta]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            yield ContentDelta(delta["text"])
        elif kind == "thinking_delta" and delta.get("thinking"):
            yield ReasoningDelta(delta["thinking"])
        elif kind == "input_json_delta" and delta.get("partial_json") and index in self.blocks:
            call = self.blocks[index]
            piece = delta["partial_json"]
            yield ContentDelta(piece) if call is None else ToolCallDelta(call, arguments=piece)

    def _usage(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        if any(usage.get(key) is not None for key in keys):
            self.input_tokens = sum(usage.get(key) or 0 for key in keys)
        if usage.get("output_tokens") is not None:
            self.output_tokens = usage["output_tokens"]

    def close(self) -> Iterator[ModelDelta]:
        yield UsageDelta(self.input_tokens, self.output_tokens)
        reason = self.stop_reason or "end_turn"
        if reason == "tool_use" and self.tool_calls == 0:
            reason = "end_turn"  # only the output tool was called: that is the answer
        yield FinishDelta(_STOP_REASONS.get(reason, reason))
