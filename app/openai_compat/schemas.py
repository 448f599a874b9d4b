"""Request bodies of the OpenAI-compatible routes, validated strictly.

A field OpenAI defines that agentd cannot honour is declared here anyway, so
`unsupported()` can answer 400 naming it (`unsupported_parameter`) instead of
"extra inputs are not permitted"; a field OpenAI does not define is a 400 too.
What a request asks of the model (temperature, max tokens, stop, ...) becomes
the run's model settings, under their Chat Completions names, which every
provider of the engine reads.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.engine.spec import TOOL_NAME_PATTERN, JsonObject

Detail = Literal["auto", "low", "high"]
NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def first_unsupported(checks: list[tuple[bool, str, str]]) -> tuple[str, str] | None:
    """(parameter, why) of the first failed check: what agentd cannot honour."""
    return next(((param, why) for failed, param, why in checks if failed), None)


def tool_choice_problem(choice: Any) -> bool:
    """Only `auto` and `none` hold for every turn of an agent's run (a forced call
    would be forced again after each tool result)."""
    return choice not in (None, "auto", "none")


# Shared ----------------------------------------------------------------------


class JsonSchemaSpec(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    schema_: JsonObject = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class FunctionSpec(Strict):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = None
    parameters: JsonObject | None = None
    strict: bool | None = None


# Chat Completions --------------------------------------------------------------


class TextPart(Strict):
    type: Literal["text"]
    text: str


class ImageURL(Strict):
    url: str
    detail: Detail | None = None


class ImagePart(Strict):
    type: Literal["image_url"]
    image_url: ImageURL


class RefusalPart(Strict):
    type: Literal["refusal"]
    refusal: str


UserPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


class CalledFunction(Strict):
    name: str
    arguments: str


class MessageToolCall(Strict):
    id: str
    type: Literal["function"] = "function"
    function: CalledFunction


class SystemMessage(Strict):
    role: Literal["system", "developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(Strict):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class AssistantMessage(Strict):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[MessageToolCall] | None = None


class ToolMessage(Strict):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


ChatMessage = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


class ChatTool(Strict):
    type: Literal["function"]
    function: FunctionSpec


class TextFormat(Strict):
    type: Literal["text"]


class JsonObjectFormat(Strict):
    type: Literal["json_object"]


class JsonSchemaFormat(Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")
]


class ChatStreamOptions(Strict):
    include_usage: bool = False
    include_obfuscation: bool | None = None


# Settings read by the engine's providers, under the same names as here.
CHAT_SETTINGS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "reasoning_effort",
    "verbosity",
    "parallel_tool_calls",
    "tool_choice",
)


class ChatCompletionRequest(Strict):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: ChatStreamOptions | None = None
    response_format: ResponseFormat | None = None
    user: str | None = Field(default=None, min_length=1, max_length=128)
    tools: list[ChatTool] | None = None
    tool_choice: str | JsonObject | None = None
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, int] | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    # Accepted, with nothing to do: every completion is a stored run anyway.
    store: bool | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = None
    # Declared to be refused by name (see `unsupported`).
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    modalities: list[str] | None = None
    audio: JsonObject | None = None
    prediction: JsonObject | None = None
    web_search_options: JsonObject | None = None
    functions: list[JsonObject] | None = None
    function_call: str | JsonObject | None = None

    def unsupported(self) -> tuple[str, str] | None:
        return first_unsupported(
            [
                (self.n not in (None, 1), "n", "only one choice (n=1) is generated"),
                (bool(self.logprobs), "logprobs", "log probabilities are not available"),
                (bool(self.top_logprobs), "top_logprobs", "log probabilities are not available"),
                (
                    any(kind != "text" for kind in self.modalities or []),
                    "modalities",
                    "only text output is generated",
                ),
                (self.audio is not None, "audio", "only text output is generated"),
                (self.prediction is not None, "prediction", "predicted outputs are not supported"),
                (
                    self.web_search_options is not None,
                    "web_search_options",
                    "web search is not a tool of agents",
                ),
                (self.functions is not None, "functions", "use `tools`"),
                (self.function_call is not None, "function_call", "use `tool_choice`"),
                (
                    tool_choice_problem(self.tool_choice),
                    "tool_choice",
                    "only `auto` and `none` are supported: an agent calls tools over many turns",
                ),
            ]
        )

    def settings(self) -> JsonObject:
        return {key: value for key in CHAT_SETTINGS if (value := getattr(self, key)) is not None}
