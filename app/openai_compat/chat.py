"""Chat Completions over runs.

A request is a run of the agent its `model` names, with the request's whole
conversation as the input: a fresh session each time and no stored history
added (the client sends it all again), the request's `tools` as client tools
of that run. When the agent calls one, the run pauses and the answer ends with
`finish_reason: "tool_calls"`; the client's next request carries the results
as `tool` messages, and is a new run. The completion's id is the run's id.
"""

from __future__ import annotations

from typing import Literal

from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import (
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)
from openai.types.chat.chat_completion_message_function_tool_call import (
    ChatCompletionMessageFunctionToolCall,
    Function,
)

from app.engine import jsontext
from app.engine.spec import ClientTool, JsonObject
from app.openai_compat.errors import OpenAIError
from app.openai_compat.outcomes import (
    arguments_of,
    client_calls,
    paused_for_a_person,
    run_failed,
    text_of,
)
from app.openai_compat.schemas import (
    AssistantMessage,
    ChatCompletionRequest,
    ChatMessage,
    FunctionSpec,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaFormat,
    SystemMessage,
    TextPart,
    ToolMessage,
)
from app.openai_compat.wire import DONE, Template, hole, payload, unix_seconds
from app.runs.schemas import RunConfig, RunCreate, RunExtras
from app.runs.service import RunService
from app.worker.bus import Frame

# Where a run's problem with its input or output schema came from in this API.
PARAMS = {"input": "messages", "output_schema": "response_format"}


# Request -> run ---------------------------------------------------------------


def run_request(body: ChatCompletionRequest) -> tuple[RunCreate, RunExtras]:
    settings = body.settings()
    create = RunCreate.model_validate(
        {
            "input": [_message(message) for message in body.messages],
            "user_id": body.user,
            "output_schema": output_schema(body),
            "stream": bool(body.stream),
            "run_config": RunConfig(model_settings=settings or None),
            "metadata": dict(body.metadata or {}),
        }
    )
    tools = [client_tool(tool.function) for tool in body.tools or []]
    return create, RunExtras(client_tools=tools, session_history=False)


def client_tool(function: FunctionSpec) -> ClientTool:
    return ClientTool(
        type="client",
        name=function.name,
        description=function.description or "",
        parameters=function.parameters or {"type": "object", "properties": {}},
    )


def output_schema(body: ChatCompletionRequest) -> JsonObject | None:
    fmt = body.response_format
    if isinstance(fmt, JsonObjectFormat):
        return {"type": "object"}
    if isinstance(fmt, JsonSchemaFormat):
        # The name becomes the schema's title: the engine's name for the output.
        return {"title": fmt.json_schema.name, **fmt.json_schema.schema_}
    return None


def _message(message: ChatMessage) -> JsonObject:
    """A Chat Completions message in the engine's canonical shape (the same one)."""
    if isinstance(message, SystemMessage | ToolMessage):
        text = _joined(message.content)
        if isinstance(message, ToolMessage):
            return {"role": "tool", "tool_call_id": message.tool_call_id, "content": text}
        return {"role": message.role, "content": text}
    if isinstance(message, AssistantMessage):
        parts = message.content
        said = [p for p in parts if isinstance(p, TextPart)] if isinstance(parts, list) else parts
        out: JsonObject = {"role": "assistant", "content": _joined(said or "")}
        if message.tool_calls:
            out["content"] = out["content"] or None
            out["tool_calls"] = [call.model_dump() for call in message.tool_calls]
        return out
    content = message.content
    if isinstance(content, str):
        return {"role": "user", "content": content}
    return {"role": "user", "content": [_user_part(part) for part in content]}


def _user_part(part: TextPart | ImagePart) -> JsonObject:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    return {"type": "image_url", "image_url": part.image_url.model_dump(exclude_none=True)}


def _joined(content: str | list[TextPart]) -> str:
    return content if isinstance(content, str) else "\n".join(part.text for part in content)


# Run -> completion --------------------------------------------------------------


def usage_of(metrics: JsonObject) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=metrics.get("input_tokens", 0),
        completion_tokens=metrics.get("output_tokens", 0),
        total_tokens=metrics.get("total_tokens", 0),
    )


def completion(output: JsonObject) -> ChatCompletion:
    """The ChatCompletion of a run that completed or paused for client tools;
    raises OpenAIError for any other outcome."""
    run_id, status = output["run_id"], output["status"]
    finish: Literal["stop", "tool_calls"] = "stop"
    if status == "completed":
        message = ChatCompletionMessage(
            role="assistant", content=text_of(output.get("content")), refusal=None
        )
    elif status == "paused":
        calls = client_calls(output.get("requirements") or [])
        if calls is None:
            raise paused_for_a_person(run_id)
        finish = "tool_calls"
        message = ChatCompletionMessage(
            role="assistant",
            content=_last_text(output.get("messages") or []),
            refusal=None,
            tool_calls=[
                ChatCompletionMessageFunctionToolCall(
                    id=call["tool_call_id"],
                    type="function",
                    function=Function(
                        name=call["tool_name"], arguments=arguments_of(call["tool_args"])
                    ),
                )
                for call in calls
            ],
        )
    elif status in ("error", "cancelled"):
        raise run_failed(run_id, status, output.get("error"))
    else:
        raise unfinished(run_id)
    return ChatCompletion(
        id=run_id,
        object="chat.completion",
        created=unix_seconds(output["created_at"]),
        model=output["agent_id"],
        choices=[Choice(index=0, message=message, finish_reason=finish, logprobs=None)],
        usage=usage_of(output.get("metrics") or {}),
    )


def unfinished(run_id: str) -> OpenAIError:
    return OpenAIError(
        503,
        f"The server stopped before run {run_id!r} ended; it goes on: GET /v1/runs/{run_id}.",
        code="run_unfinished",
    )


def _last_text(messages: list[JsonObject]) -> str | None:
    """The text of the turn that called the tools, if it had any."""
    for message in reversed(messages):
        if message.get("role") == "assistant":
            content = message.get("content")
            return content if isinstance(content, str) and content else None
    return None


# Run events -> chunks -----------------------------------------------------------

# The parts of a chunk, from the SDK's types, encoded once per stream at most.
_CHUNK = payload(
    ChatCompletionChunk(id="c", object="chat.completion.chunk", created=0, model="m", choices=[])
)
_CHOICE = payload(ChunkChoice(index=0, delta=ChoiceDelta(), finish_reason=None, logprobs=None))
_ROLE = payload(ChoiceDelta(role="assistant"))
_CONTENT = payload(ChoiceDelta(content=hole("content")))
_USAGE = payload(CompletionUsage(prompt_tokens=0, completion_tokens=0, total_tokens=0))


class ChatChunks:
    """A run's stored events as `chat.completion.chunk` frames, then `data: [DONE]`
    (a `Translation`). Text deltas are the hot path: one template per stream."""

    done = False  # the whole run is one stream: it ends with the run

    def __init__(
        self, runs: RunService, run_id: str, model: str, created: int, *, include_usage: bool
    ) -> None:
        self.runs = runs
        self.run_id = run_id
        self.include_usage = include_usage
        self._base: JsonObject = {**_CHUNK, "id": run_id, "created": created, "model": model}
        self._content = Template.data_line(self._chunk(_CONTENT))
        self._finish: str | None = None
        self._failed = False
        self._completed: Frame | None = None

    def _chunk(self, delta: JsonObject | None = None, finish: str | None = None) -> JsonObject:
        choices = [] if delta is None else [{**_CHOICE, "delta": delta, "finish_reason": finish}]
        return {**self._base, "choices": choices}

    def opening(self) -> bytes:
        return _line(self._chunk(_ROLE))

    def frames(self, batch: list[Frame]) -> bytes:
        out: list[bytes] = []
        for frame in batch:
            kind = frame.event
            if kind == "RunContent":
                content = jsontext.loads(frame.data).get("content")
                if isinstance(content, str) and content:
                    out.append(self._content.fill(content=content))
            elif kind == "RunCompleted":
                self._finish, self._completed = "stop", frame
                out.append(_line(self._chunk({}, "stop")))
            elif kind == "RunPaused":
                out.append(self._paused(jsontext.loads(frame.data)))
            elif kind in ("RunError", "RunCancelled"):
                data = jsontext.loads(frame.data)
                status = "error" if kind == "RunError" else "cancelled"
                out.append(self._error(run_failed(self.run_id, status, data.get("error"))))
        return b"".join(out)

    def _paused(self, data: JsonObject) -> bytes:
        calls = client_calls(data.get("requirements") or [])
        if calls is None:
            return self._error(paused_for_a_person(self.run_id))
        self._finish = "tool_calls"
        delta = ChoiceDelta(
            tool_calls=[
                ChoiceDeltaToolCall(
                    index=index,
                    id=call["tool_call_id"],
                    type="function",
                    function=ChoiceDeltaToolCallFunction(
                        name=call["tool_name"], arguments=arguments_of(call["tool_args"])
                    ),
                )
                for index, call in enumerate(calls)
            ]
        )
        return _line(self._chunk(payload(delta))) + _line(self._chunk({}, "tool_calls"))

    def _error(self, error: OpenAIError) -> bytes:
        self._failed = True
        return _line(error.body())

    async def closing(self) -> bytes:
        if self._failed:
            return b""
        if self._finish is None:  # stopped early: the server is shutting down
            return self._error(unfinished(self.run_id))
        if not self.include_usage:
            return DONE
        if self._completed is not None:
            metrics = jsontext.loads(self._completed.data).get("metrics") or {}
        else:  # paused: the event does not carry the run's metrics
            metrics = (await self.runs.output(self.run_id)).metrics.model_dump()
        usage = {
            **_USAGE,
            "prompt_tokens": metrics.get("input_tokens", 0),
            "completion_tokens": metrics.get("output_tokens", 0),
            "total_tokens": metrics.get("total_tokens", 0),
        }
        return _line({**self._chunk(), "usage": usage}) + DONE


def _line(value: JsonObject) -> bytes:
    return b"data: %s\n\n" % jsontext.dumps(value)
