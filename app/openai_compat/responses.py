"""The Responses API over runs: a request becomes a run, a run record the fixed
parts of its Response.

The response id is the run id. `previous_response_id` continues that run's
session: its stored history comes before the new input. A response that ended
with client function calls is a paused run, which holds no history yet; the
follow-up (its `function_call_output` items) is a new run in the same session
whose input is the paused run's conversation, then the new items. `instructions`
come after the agent's own; `tools` are client tools of this run only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from openai.types.responses import (
    FunctionTool,
    Response,
    ResponseError,
    ResponseStatus,
    ResponseTextConfig,
    ResponseUsage,
)
from openai.types.responses.response import IncompleteDetails
from openai.types.responses.response_format_text_json_schema_config import (
    ResponseFormatTextJSONSchemaConfig,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails
from openai.types.shared import ResponseFormatJSONObject, ResponseFormatText

from app.engine.spec import JsonObject
from app.errors import RunNotFound
from app.openai_compat.chat import client_tool
from app.openai_compat.errors import OpenAIError
from app.openai_compat.responses_schemas import (
    AssistantMessage,
    FunctionCall,
    FunctionCallOutput,
    InputImage,
    InputItem,
    InputMessage,
    InputText,
    OutputText,
    ResponseCreateRequest,
    TextFormatJsonObject,
    TextFormatJsonSchema,
)
from app.openai_compat.wire import payload, unix_seconds
from app.runs.schemas import RunConfig, RunCreate, RunExtras
from app.runs.service import RunService

# Where a run's problem with its input or output schema came from in this API.
PARAMS = {"input": "input", "output_schema": "text.format"}
_MESSAGE_FIELDS = ("role", "content", "tool_calls", "tool_call_id")
JSON_OBJECT: JsonObject = {"type": "object"}


# Request -> run ---------------------------------------------------------------


async def run_request(runs: RunService, body: ResponseCreateRequest) -> tuple[RunCreate, RunExtras]:
    session_id: str | None = None
    earlier: list[JsonObject] = []
    if body.previous_response_id is not None:
        try:
            previous = await runs.get(body.previous_response_id)
        except RunNotFound:
            raise OpenAIError(
                404,
                f"No response with id {body.previous_response_id!r}.",
                code="previous_response_not_found",
                param="previous_response_id",
            ) from None
        session_id = previous.session_id
        if previous.status == "paused":  # its conversation is not in the history yet
            messages = (await runs.output(previous.id)).messages
            earlier = [{k: m[k] for k in _MESSAGE_FIELDS if k in m} for m in messages]
    given = body.input
    run_input = given if isinstance(given, str) and not earlier else earlier + conversation(given)
    create = RunCreate.model_validate(
        {
            "input": run_input,
            "session_id": session_id,
            "user_id": body.user,
            "output_schema": output_schema(body),
            "stream": bool(body.stream),
            "background": bool(body.background),
            "run_config": RunConfig(model_settings=body.settings() or None),
            "metadata": dict(body.metadata or {}),
        }
    )
    extras = RunExtras(
        instructions=body.instructions,
        client_tools=[client_tool(tool) for tool in body.tools or []],
    )
    return create, extras


def output_schema(body: ResponseCreateRequest) -> JsonObject | None:
    fmt = body.text.format if body.text is not None else None
    if isinstance(fmt, TextFormatJsonObject):
        return dict(JSON_OBJECT)
    if isinstance(fmt, TextFormatJsonSchema):
        return {"title": fmt.name, **fmt.schema_}
    return None


def conversation(given: str | list[InputItem]) -> list[JsonObject]:
    """Input items as messages in the engine's canonical shape (Chat Completions):
    a function call joins the assistant message before it, as one turn."""
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    messages: list[JsonObject] = []
    for index, item in enumerate(given):
        if isinstance(item, InputMessage):
            messages.append({"role": item.role, "content": _content(item.content, index)})
        elif isinstance(item, AssistantMessage):
            messages.append({"role": "assistant", "content": _text(item.content)})
        elif isinstance(item, FunctionCall):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            if messages and messages[-1]["role"] == "assistant":
                messages[-1].setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutput):
            output = item.output if isinstance(item.output, str) else _text(item.output)
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": output})
    return messages


def _content(content: str | list[InputText | InputImage], index: int) -> Any:
    if isinstance(content, str):
        return content
    parts: list[JsonObject] = []
    for number, part in enumerate(content):
        if isinstance(part, InputText):
            parts.append({"type": "text", "text": part.text})
        elif part.image_url is not None:
            image = {"url": part.image_url, **({"detail": part.detail} if part.detail else {})}
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise OpenAIError(
                400,
                "Images are taken by `image_url` (a URL or a data: URL), not by file id.",
                code="unsupported_parameter",
                param=f"input[{index}].content[{number}].file_id",
            )
    return parts


def _text(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, OutputText | InputText))


# Run record -> Response -----------------------------------------------------------


class RunRecord(Protocol):
    """What a stored run (`Run`) and a run being created (`NewRun`) both have."""

    id: str
    agent_id: str
    user_id: str | None
    request: dict[str, Any]
    metadata_: dict[str, Any]
    created_at: Any


@dataclass(frozen=True, slots=True)
class ResponseShape:
    """What a run's Response is whatever becomes of the run, read from its record:
    `base` is the Response's JSON with nothing output yet, as the SDK writes it."""

    base: JsonObject

    @classmethod
    def of(
        cls,
        run: RunRecord,
        *,
        background: bool | None = None,
        previous_response_id: str | None = None,
    ) -> ResponseShape:
        overrides = run.request.get("overrides") or {}
        settings = overrides.get("model_settings") or {}
        tools = overrides.get("client_tools") or []
        schema = overrides.get("output_schema")
        base: JsonObject = {
            **_BASE,
            "id": run.id,
            "created_at": unix_seconds(run.created_at),
            "model": run.agent_id,
            "instructions": overrides.get("instructions"),
            "tools": [_function_tool(tool) for tool in tools],
            "tool_choice": settings.get("tool_choice") or "auto",
            "parallel_tool_calls": settings.get("parallel_tool_calls", True),
            "text": _TEXT if schema is None else {"format": _text_format(schema)},
            "temperature": settings.get("temperature"),
            "top_p": settings.get("top_p"),
            "max_output_tokens": settings.get("max_tokens"),
            "user": run.user_id,
            "metadata": dict(run.metadata_),
            "previous_response_id": previous_response_id,
        }
        if background is not None:
            base["background"] = background
        return cls(base)

    def value(
        self,
        status: ResponseStatus,
        output: list[JsonObject] | None = None,
        *,
        usage: JsonObject | None = None,
        error: JsonObject | None = None,
    ) -> JsonObject:
        """The Response's JSON at a moment (`output` and the rest as JSON too)."""
        return {
            **self.base,
            "status": status,
            "output": list(output or []),
            "usage": usage,
            "error": error,
            "incomplete_details": INCOMPLETE if status == "incomplete" else None,
        }

    def response(
        self,
        status: ResponseStatus,
        output: list[JsonObject] | None = None,
        *,
        usage: JsonObject | None = None,
        error: JsonObject | None = None,
    ) -> Response:
        return Response.model_validate(self.value(status, output, usage=usage, error=error))


def _function_tool(tool: JsonObject) -> JsonObject:
    return payload(
        FunctionTool(
            type="function",
            name=tool["name"],
            description=tool.get("description") or None,
            parameters=tool.get("parameters"),
            strict=False,
        )
    )


def _text_format(schema: JsonObject) -> JsonObject:
    if schema == JSON_OBJECT:
        return payload(ResponseFormatJSONObject(type="json_object"))
    return payload(
        ResponseFormatTextJSONSchemaConfig(
            type="json_schema", name=str(schema.get("title") or "output"), schema=schema
        )
    )


# What every Response has, from the SDK's type; `ResponseShape.of` sets the values.
_BASE = payload(
    Response.model_validate(
        {
            "id": "r",
            "object": "response",
            "created_at": 0,
            "model": "m",
            "status": "in_progress",
            "output": [],
            "instructions": None,
            "tools": [],
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "text": {"format": {"type": "text"}},
            "temperature": None,
            "top_p": None,
            "max_output_tokens": None,
            "user": None,
            "metadata": {},
            "previous_response_id": None,
            "error": None,
            "incomplete_details": None,
            "usage": None,
        }
    )
)
_TEXT = payload(ResponseTextConfig(format=ResponseFormatText(type="text")))
# Paused for a person: no reason OpenAI names.
INCOMPLETE = payload(IncompleteDetails(reason=None))
_USAGE = payload(
    ResponseUsage(
        input_tokens=0,
        input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
        output_tokens=0,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        total_tokens=0,
    )
)


def usage_of(metrics: JsonObject) -> JsonObject:
    """A run's metrics as the Response's usage."""
    return {
        **_USAGE,
        "input_tokens": metrics.get("input_tokens", 0),
        "output_tokens": metrics.get("output_tokens", 0),
        "total_tokens": metrics.get("total_tokens", 0),
    }


def failure(error: JsonObject | None) -> JsonObject:
    """A run's error in the Response: OpenAI's codes are a closed set, so the
    run's own code leads the message."""
    code = (error or {}).get("code") or "internal_error"
    message = (error or {}).get("message") or "The run failed."
    return payload(ResponseError(code="server_error", message=f"{code}: {message}"))
