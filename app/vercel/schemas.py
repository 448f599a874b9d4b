"""The Vercel AI SDK's chat request (`useChat`'s `DefaultChatTransport` body:
`{"id", "messages": UIMessage[], "trigger", "messageId"}`) and what it asks of
the run service: a new run of the conversation the client sends whole, or the
answers to the chat's paused run, read from the tool parts of the last
assistant message (an approval responded to, or a client tool's output)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from app.engine.output import Requirement
from app.errors import ValidationFailed
from app.runs.schemas import SESSION_ID_PATTERN, RunContinue, RunCreate, RunExtras

ToolState = Literal[
    "input-streaming",
    "input-available",
    "approval-requested",
    "approval-responded",
    "output-available",
    "output-error",
    "output-denied",
]


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(_Part):
    type: Literal["text"]
    text: str


class FilePart(_Part):
    type: Literal["file"]
    media_type: str = Field(alias="mediaType")
    url: str


class Approval(_Part):
    id: str
    approved: bool | None = None
    reason: str | None = None


class ToolPart(_Part):
    """A tool call shown in a message: `tool-<name>`, or `dynamic-tool`."""

    type: str
    tool_call_id: str = Field(alias="toolCallId", min_length=1)
    state: ToolState
    input: Any = None
    output: Any = None
    error_text: str | None = Field(default=None, alias="errorText")
    approval: Approval | None = None


class OtherPart(_Part):
    """Reasoning, sources, steps and data parts: shown to the user, not sent to
    the model."""

    type: str


def _part_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):
        return "other"
    if kind in ("text", "file"):
        return kind
    if kind.startswith("tool-") or kind == "dynamic-tool":
        return "tool"
    return "other"


UIPart = Annotated[
    Annotated[TextPart, Tag("text")]
    | Annotated[FilePart, Tag("file")]
    | Annotated[ToolPart, Tag("tool")]
    | Annotated[OtherPart, Tag("other")],
    Discriminator(_part_kind),
]


class UIMessage(_Part):
    id: str
    role: Literal["system", "user", "assistant"]
    parts: list[UIPart]
    metadata: Any = None


class ChatRequest(BaseModel):
    """What `useChat` posts: the chat (a session) and all of its messages."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=SESSION_ID_PATTERN, description="The chat: the session's id.")
    messages: list[UIMessage] = Field(min_length=1)
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    message_id: str | None = Field(default=None, alias="messageId")


def run_request(chat: ChatRequest) -> tuple[RunCreate, RunExtras]:
    body = RunCreate.model_validate(
        {"input": conversation(chat.messages), "session_id": chat.id, "stream": True}
    )
    return body, RunExtras(session_history=False)


def conversation(messages: list[UIMessage]) -> list[dict[str, Any]]:
    """The messages the model reads: the text of each message (a user message's
    images as `image_url` parts). Tool calls of earlier turns stay out."""
    converted: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        text = "".join(part.text for part in message.parts if isinstance(part, TextPart))
        if message.role != "user":
            if text:
                converted.append({"role": message.role, "content": text})
            continue
        images = [
            _image(part, ["messages", index, "parts", number])
            for number, part in enumerate(message.parts)
            if isinstance(part, FilePart)
        ]
        content: Any = text
        if images:
            content = [{"type": "text", "text": text}, *images] if text else images
        converted.append({"role": "user", "content": content})
    if not any(message["role"] == "user" for message in converted):
        _fail(["messages"], "needs at least one user message")
    return converted


def _image(part: FilePart, where: list[Any]) -> dict[str, Any]:
    if not part.media_type.startswith("image/"):
        _fail([*where, "mediaType"], "only images are supported as files")
    return {"type": "image_url", "image_url": {"url": part.url}}


def answered_calls(chat: ChatRequest) -> dict[str, ToolPart]:
    """The tool parts of the last message, when it is the assistant's, that
    answer a call: an approval responded to, or an output (or error) given."""
    last = chat.messages[-1]
    if last.role != "assistant":
        return {}
    answered = {"approval-responded", "output-available", "output-error", "output-denied"}
    return {
        part.tool_call_id: part
        for part in last.parts
        if isinstance(part, ToolPart) and part.state in answered
    }


def decisions(requirements: list[Requirement], parts: dict[str, ToolPart]) -> RunContinue:
    """The continue body answering a paused run's `requirements` from the
    client's tool parts, each as its kind needs (an approval, a client tool's
    output, or the input a person gave)."""
    tools: list[dict[str, Any]] = []
    for requirement in requirements:
        part = parts.get(requirement.tool_call_id)
        if part is None:
            continue  # continue names what is missing
        decision: dict[str, Any] = {"tool_call_id": requirement.tool_call_id}
        if requirement.kind == "confirmation":
            approval = part.approval
            decision["confirmed"] = bool(approval and approval.approved)
            if approval is not None and approval.reason:
                decision["note"] = approval.reason
        elif requirement.kind == "user_input":
            decision["user_input"] = part.output
        else:
            decision["result"] = (
                part.output if part.state == "output-available" else part.error_text
            )
        tools.append(decision)
    return RunContinue.model_validate({"tools": tools, "stream": True})


def _fail(loc: list[Any], message: str) -> NoReturn:
    raise ValidationFailed(
        "The chat request is invalid.",
        errors=[{"loc": loc, "msg": message, "type": "value_error"}],
    )
