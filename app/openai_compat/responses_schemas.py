"""The request body of `POST /v1/responses`, validated strictly (see `schemas`).

Input items are the ones a client of an agent sends: messages (the short form
`{role, content}` or `type: "message"`), assistant messages and function calls
given back from an earlier response's `output`, and `function_call_output`.
Fields the API adds when it returns an item (`id`, `status`, `annotations`...)
are accepted and have no effect.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from app.engine.spec import JsonObject
from app.openai_compat.schemas import (
    Detail,
    FunctionSpec,
    JsonSchemaSpec,
    Strict,
    first_unsupported,
    tool_choice_problem,
)

ItemStatus = Literal["in_progress", "completed", "incomplete"]


class InputText(Strict):
    type: Literal["input_text"]
    text: str
    prompt_cache_breakpoint: JsonObject | None = None


class InputImage(Strict):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Detail | None = None
    prompt_cache_breakpoint: JsonObject | None = None


class OutputText(Strict):
    type: Literal["output_text"]
    text: str
    annotations: list[JsonObject] | None = None
    logprobs: list[JsonObject] | None = None


class Refusal(Strict):
    type: Literal["refusal"]
    refusal: str


InputPart = Annotated[InputText | InputImage, Field(discriminator="type")]
AssistantPart = Annotated[OutputText | InputText | Refusal, Field(discriminator="type")]


class InputMessage(Strict):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer"]
    content: str | list[InputPart]
    id: str | None = None
    status: ItemStatus | None = None


class AssistantMessage(Strict):
    type: Literal["message"] = "message"
    role: Literal["assistant"]
    content: str | list[AssistantPart]
    id: str | None = None
    status: ItemStatus | None = None
    phase: str | None = None


class FunctionCall(Strict):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str
    arguments: str
    id: str | None = None
    status: ItemStatus | None = None
    namespace: str | None = None


class FunctionCallOutput(Strict):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[InputPart]
    id: str | None = None
    status: ItemStatus | None = None
    name: str | None = None


def _item_kind(item: Any) -> str | None:
    """The union member for an item: messages are told apart by their role."""
    if isinstance(item, dict):
        kind, role = item.get("type", "message"), item.get("role")
    else:
        kind, role = getattr(item, "type", None), getattr(item, "role", None)
    if kind == "message":
        return "assistant" if role == "assistant" else "message"
    return kind if isinstance(kind, str) else None


InputItem = Annotated[
    Annotated[InputMessage, Tag("message")]
    | Annotated[AssistantMessage, Tag("assistant")]
    | Annotated[FunctionCall, Tag("function_call")]
    | Annotated[FunctionCallOutput, Tag("function_call_output")],
    Discriminator(
        _item_kind,
        custom_error_type="invalid_item",
        custom_error_message="must be a message, a function_call or a function_call_output",
    ),
]


class FunctionTool(FunctionSpec):
    type: Literal["function"]
    defer_loading: bool | None = None
    allowed_callers: list[str] | None = None
    output_schema: JsonObject | None = None


class TextFormatText(Strict):
    type: Literal["text"]


class TextFormatJsonObject(Strict):
    type: Literal["json_object"]


class TextFormatJsonSchema(JsonSchemaSpec):
    type: Literal["json_schema"]


class TextConfig(Strict):
    format: (
        Annotated[
            TextFormatText | TextFormatJsonObject | TextFormatJsonSchema,
            Field(discriminator="type"),
        ]
        | None
    ) = None
    verbosity: str | None = None


class Reasoning(Strict):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None


class ResponsesStreamOptions(Strict):
    include_obfuscation: bool | None = None


class ResponseCreateRequest(Strict):
    model: str = Field(min_length=1)
    input: str | list[InputItem]
    instructions: str | None = None
    previous_response_id: str | None = Field(default=None, min_length=1, max_length=40)
    stream: bool | None = False
    stream_options: ResponsesStreamOptions | None = None
    background: bool | None = False
    text: TextConfig | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: str | JsonObject | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = Field(default=None, min_length=1, max_length=128)
    metadata: dict[str, str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    reasoning: Reasoning | None = None
    truncation: Literal["auto", "disabled"] | None = None
    # Accepted, with nothing to do.
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = None
    # Declared to be refused by name (see `unsupported`).
    store: bool | None = None
    include: list[str] | None = None
    top_logprobs: int | None = None
    max_tool_calls: int | None = None
    prompt: JsonObject | None = None
    conversation: str | JsonObject | None = None

    def unsupported(self) -> tuple[str, str] | None:
        reasoning = self.reasoning or Reasoning()
        return first_unsupported(
            [
                (self.store is False, "store", "every response is stored: it is a run"),
                (bool(self.include), "include", "no extra output data is available"),
                (bool(self.top_logprobs), "top_logprobs", "log probabilities are not available"),
                (self.max_tool_calls is not None, "max_tool_calls", "use the agent's max_turns"),
                (self.prompt is not None, "prompt", "prompts are the agents' instructions"),
                (
                    self.conversation is not None,
                    "conversation",
                    "use `previous_response_id`: a response continues its run's session",
                ),
                (
                    bool(reasoning.summary or reasoning.generate_summary),
                    "reasoning.summary",
                    "reasoning summaries are not generated",
                ),
                (
                    tool_choice_problem(self.tool_choice),
                    "tool_choice",
                    "only `auto` and `none` are supported: an agent calls tools over many turns",
                ),
            ]
        )

    def settings(self) -> JsonObject:
        """The model settings this request asks for, under Chat Completions names."""
        values = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_output_tokens,
            "reasoning_effort": self.reasoning.effort if self.reasoning else None,
            "verbosity": self.text.verbosity if self.text else None,
            "parallel_tool_calls": self.parallel_tool_calls,
            "tool_choice": self.tool_choice,
        }
        return {key: value for key, value in values.items() if value is not None}
