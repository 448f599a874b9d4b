"""A run's stored events as the Responses API's typed stream events, and its
Response built from them.

`ResponseEvents` reads a run's events from the first one, in order, and numbers
what it says from 0 (`response.created`, before any event). The same stored
events always give the same events with the same numbers, so a stream resumed
with `starting_after=N` is the replay with the first N+1 left out, and a
retrieved Response has the items a stream showed, with the same ids. Each
model turn's text is one message item (`msg_<run>_<seq of its first text>`);
a run paused for client tools ends with one `function_call` item per call.

Every event kind is encoded once, at import, from an instance of the SDK's own
type: a `Template` with holes for what changes (the sequence number, the item,
the text), so an event costs a few small JSON dumps, not a model's validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFailedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseStatus,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)
from pydantic import BaseModel

from app.engine import jsontext
from app.engine.spec import JsonObject
from app.openai_compat.outcomes import arguments_of, client_calls
from app.openai_compat.responses import ResponseShape, failure, usage_of
from app.openai_compat.wire import Template, hole, payload
from app.runs.service import RunService
from app.worker.bus import Frame

NOTHING_SENT = 2**62  # `after` for a reader that wants the Response, not the events
# Events after which the model's next text is a new turn.
_TURN_ENDS = frozenset({"ToolCallStarted", "AgentHandoff", "RunContentCompleted"})
_ENDS: dict[str, ResponseStatus] = {
    "RunCompleted": "completed",
    "RunError": "failed",
    "RunCancelled": "cancelled",
}


def _template(event: BaseModel, *holes: str) -> Template:
    """The SSE bytes of an SDK event, with holes for the named fields (and the
    sequence number)."""
    value = payload(event)
    for name in ("sequence_number", *holes):
        value[name] = hole(name)
    return Template.typed_event(value)


_MESSAGE = ResponseOutputMessage(
    id="msg", type="message", role="assistant", status="in_progress", content=[]
)
_TEXT = ResponseOutputText(type="output_text", text="", annotations=[], logprobs=[])
_CALL = ResponseFunctionToolCall(
    type="function_call", id="fc", call_id="call", name="f", arguments="", status="in_progress"
)
MESSAGE, TEXT_PART, FUNCTION_CALL = payload(_MESSAGE), payload(_TEXT), payload(_CALL)
_RESPONSE = Response.model_validate(
    {"id": "r", "object": "response", "created_at": 0, "model": "m", "output": [],
     "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
)  # fmt: skip
_AT = {"item_id": "msg", "output_index": 0}
_PART_AT = {**_AT, "content_index": 0}

CREATED = _template(
    ResponseCreatedEvent(type="response.created", sequence_number=0, response=_RESPONSE),
    "response",
)
IN_PROGRESS = _template(
    ResponseInProgressEvent(type="response.in_progress", sequence_number=0, response=_RESPONSE),
    "response",
)
TERMINAL: dict[str, Template] = {
    status: _template(cls(type=kind, sequence_number=0, response=_RESPONSE), "response")
    for status, cls, kind in (
        ("completed", ResponseCompletedEvent, "response.completed"),
        ("incomplete", ResponseIncompleteEvent, "response.incomplete"),
        ("failed", ResponseFailedEvent, "response.failed"),
    )
}
ITEM_ADDED = _template(
    ResponseOutputItemAddedEvent(
        type="response.output_item.added", sequence_number=0, output_index=0, item=_MESSAGE
    ),
    "output_index",
    "item",
)
ITEM_DONE = _template(
    ResponseOutputItemDoneEvent(
        type="response.output_item.done", sequence_number=0, output_index=0, item=_MESSAGE
    ),
    "output_index",
    "item",
)
PART_ADDED = _template(
    ResponseContentPartAddedEvent(
        type="response.content_part.added", sequence_number=0, part=_TEXT, **_PART_AT
    ),
    "item_id",
    "output_index",
    "part",
)
PART_DONE = _template(
    ResponseContentPartDoneEvent(
        type="response.content_part.done", sequence_number=0, part=_TEXT, **_PART_AT
    ),
    "item_id",
    "output_index",
    "part",
)
TEXT_DELTA = _template(
    ResponseTextDeltaEvent(
        type="response.output_text.delta", sequence_number=0, delta="", logprobs=[], **_PART_AT
    ),
    "item_id",
    "output_index",
    "delta",
)
TEXT_DONE = _template(
    ResponseTextDoneEvent(
        type="response.output_text.done", sequence_number=0, text="", logprobs=[], **_PART_AT
    ),
    "item_id",
    "output_index",
    "text",
)
ARGUMENTS_DELTA = _template(
    ResponseFunctionCallArgumentsDeltaEvent(
        type="response.function_call_arguments.delta", sequence_number=0, delta="", **_AT
    ),
    "item_id",
    "output_index",
    "delta",
)
ARGUMENTS_DONE = _template(
    ResponseFunctionCallArgumentsDoneEvent(
        type="response.function_call_arguments.done", sequence_number=0, arguments="", **_AT
    ),
    "item_id",
    "output_index",
    "arguments",
)


@dataclass(slots=True)
class _Turn:
    """The message item of the turn whose text is arriving."""

    item_id: str
    index: int
    delta: Template  # TEXT_DELTA for this item
    texts: list[str] = field(default_factory=list)


class ResponseEvents:
    """The Responses events of one run (a `Translation`); those numbered up to
    `after` are left out. `response()` is the Response as the events so far make it."""

    done = False  # the whole run is one stream: it ends with the run

    def __init__(
        self, shape: ResponseShape, runs: RunService | None = None, *, after: int = -1
    ) -> None:
        self.shape = shape
        self.runs = runs
        self.after = after
        self.number = -1
        self.status: ResponseStatus = "in_progress"
        self.output: list[JsonObject] = []
        self.usage: JsonObject | None = None
        self.error: JsonObject | None = None
        self._id = shape.base["id"]
        self._turn: _Turn | None = None
        self._end: int | None = None  # the number kept for the terminal event
        self._paused = False

    # The Response --------------------------------------------------------------

    def response(self) -> Response:
        return self.shape.response(self.status, self.output, usage=self.usage, error=self.error)

    def _value(self) -> JsonObject:
        return self.shape.value(self.status, self.output, usage=self.usage, error=self.error)

    async def settle(self) -> None:
        """A paused run's usage: its `RunPaused` event does not carry it."""
        if self._paused and self.usage is None and self.runs is not None:
            metrics = (await self.runs.output(self._id)).metrics
            self.usage = usage_of(metrics.model_dump())

    # The Translation -----------------------------------------------------------

    def opening(self) -> bytes:
        out: list[bytes] = []
        self._emit(out, CREATED, response=self._value())
        return b"".join(out)

    def frames(self, batch: list[Frame]) -> bytes:
        out: list[bytes] = []
        for frame in batch:
            kind = frame.event
            if self._end is not None:  # the run went on after a pause
                self._terminal(out, self._end)
            if kind == "RunContent":
                self._text(frame, out)
            elif kind in _TURN_ENDS:
                self._close_turn(out)
            elif kind in ("RunStarted", "RunContinued"):
                self.status = "in_progress"
                self._emit(out, IN_PROGRESS, response=self._value())
            elif kind in _ENDS:
                self._close_turn(out)
                self._ended(kind, jsontext.loads(frame.data))
            elif kind == "RunPaused":
                self._close_turn(out)
                self._pause(out, jsontext.loads(frame.data))
        return b"".join(out)

    async def closing(self) -> bytes:
        """The terminal event (none when the stream stopped early: the client
        resumes it with `starting_after`)."""
        out: list[bytes] = []
        if self._end is not None:
            await self.settle()
            self._terminal(out, self._end)
        return b"".join(out)

    # Steps ------------------------------------------------------------------------

    def _emit(self, out: list[bytes], template: Template, **values: Any) -> None:
        self.number += 1
        if self.number > self.after:
            out.append(template.fill(sequence_number=self.number, **values))

    def _text(self, frame: Frame, out: list[bytes]) -> None:
        text = jsontext.loads(frame.data).get("content")
        if not isinstance(text, str) or not text:
            return
        turn = self._turn
        if turn is None:
            item_id, index = f"msg_{self._id}_{frame.seq}", len(self.output)
            at = {"item_id": item_id, "output_index": index}
            turn = self._turn = _Turn(item_id, index, TEXT_DELTA.partial(**at))
            self._emit(out, ITEM_ADDED, output_index=index, item={**MESSAGE, "id": item_id})
            self._emit(out, PART_ADDED, **at, part=TEXT_PART)
        turn.texts.append(text)
        self._emit(out, turn.delta, delta=text)

    def _close_turn(self, out: list[bytes]) -> None:
        turn, self._turn = self._turn, None
        if turn is None:
            return
        text = "".join(turn.texts)
        at = {"item_id": turn.item_id, "output_index": turn.index}
        part = {**TEXT_PART, "text": text}
        self._emit(out, TEXT_DONE, **at, text=text)
        self._emit(out, PART_DONE, **at, part=part)
        self._done(out, {**MESSAGE, "id": turn.item_id, "status": "completed", "content": [part]})

    def _done(self, out: list[bytes], item: JsonObject) -> None:
        index = len(self.output)
        self.output.append(item)
        self._emit(out, ITEM_DONE, output_index=index, item=item)

    def _pause(self, out: list[bytes], data: JsonObject) -> None:
        calls = client_calls(data.get("requirements") or [])
        for call in calls or []:
            self._function_call(out, call)
        # Paused for a person, the run waits for what this API cannot send.
        self.status = "completed" if calls is not None else "incomplete"
        self._paused = True
        self._keep_end()

    def _function_call(self, out: list[bytes], call: JsonObject) -> None:
        index, arguments = len(self.output), arguments_of(call["tool_args"])
        item_id = f"fc_{self._id}_{call['tool_call_id']}"
        item = {
            **FUNCTION_CALL,
            "id": item_id,
            "call_id": call["tool_call_id"],
            "name": call["tool_name"],
        }
        at = {"item_id": item_id, "output_index": index}
        self._emit(out, ITEM_ADDED, output_index=index, item=item)
        self._emit(out, ARGUMENTS_DELTA, **at, delta=arguments)
        self._emit(out, ARGUMENTS_DONE, **at, arguments=arguments)
        self._done(out, {**item, "arguments": arguments, "status": "completed"})

    def _ended(self, kind: str, data: JsonObject) -> None:
        self.status = _ENDS[kind]
        self._paused = False
        if kind == "RunCompleted":
            self.usage = usage_of(data.get("metrics") or {})
        elif kind == "RunError":
            self.error = failure(data.get("error"))
        self._keep_end()

    def _keep_end(self) -> None:
        """Number the terminal event now (it is sent by `closing`, or before what
        follows when the run goes on after a pause): its number follows the event
        that ended the run whatever comes later."""
        self.number += 1
        self._end = self.number

    def _terminal(self, out: list[bytes], number: int) -> None:
        self._end = None
        if number > self.after:
            # A cancelled run's stream ends as a failed one does (its status says which).
            template = TERMINAL.get(self.status, TERMINAL["failed"])
            out.append(template.fill(sequence_number=number, response=self._value()))
