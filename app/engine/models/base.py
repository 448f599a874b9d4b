"""The model protocol: one streaming call, a few small delta types.

Messages use the Chat Completions shape throughout the engine (the canonical
form stored on runs and sessions):

    {"role": "system" | "user" | "assistant" | "tool", "content": str | list | None,
     "tool_calls": [{"id", "type": "function", "function": {"name", "arguments"}}],
     "tool_call_id": str, "reasoning_content": str}

User content may be a list of parts: `{"type": "text", "text"}` and
`{"type": "image_url", "image_url": {"url"}}` (an https URL or a `data:` URL).
Providers translate from this shape to their own wire format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, Any]


@dataclass(slots=True, frozen=True)
class ToolDefinition:
    """A tool as the model sees it."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True, frozen=True)
class OutputSchema:
    """Structured output the model must produce (validated by the loop, not the provider)."""

    name: str
    schema: dict[str, Any]
    strict: bool = False


@dataclass(slots=True)
class ModelRequest:
    """Everything one model call needs."""

    model: str  # the provider's model name, without the "provider:" prefix
    messages: list[Message]
    tools: list[ToolDefinition] = field(default_factory=list)
    output_schema: OutputSchema | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # temperature, top_p, max_tokens, ...
    # False: nobody watches this answer arrive (a blocking run), so a provider may ask
    # for it in one response and yield its deltas at once. Streaming is always correct.
    stream: bool = True
    # The call's role in the run: "agent" (the agent's own turns), "memory", "summary",
    # "parser" or "output". Providers ignore it; the test model answers by it.
    purpose: str = "agent"


@dataclass(slots=True, frozen=True)
class ContentDelta:
    text: str


@dataclass(slots=True, frozen=True)
class ReasoningDelta:
    text: str


@dataclass(slots=True, frozen=True)
class ToolCallDelta:
    """A fragment of one tool call; fragments with the same index belong together.

    `id` and `name` arrive on the first fragment (None later); `arguments` is a
    piece of the JSON arguments string to append.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True, frozen=True)
class UsageDelta:
    input_tokens: int
    output_tokens: int


@dataclass(slots=True, frozen=True)
class FinishDelta:
    reason: str  # "stop", "tool_calls", "length", "content_filter", ...


ModelDelta = ContentDelta | ReasoningDelta | ToolCallDelta | UsageDelta | FinishDelta


class ModelProviderError(Exception):
    """The provider failed (network, 5xx, 429 after retries, auth, bad request)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelClient(Protocol):
    """A model that streams its answer as deltas (all at once when it asked the server
    for the whole answer, see `ModelRequest.stream`).

    Implementations raise ModelProviderError for provider failures after their
    own retries, and must stop promptly when the consuming task is cancelled.
    """

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelDelta]: ...

    async def aclose(self) -> None: ...
