"""A run's stored events as the Responses API's typed stream events, and its
Response built from them.

`ResponseEvents` reads a run's events from the first one, in order, and numbers
what it says from 0 (`response.created`, before any event). The same stored
events always give the same events with the same numbers, so a stream resumed
with `starting_after=N` is the replay with the first N+1 left out, and a
retrieved Response has the items a stream showed, with the same ids. Each
model turn's text is one message item (`msg_<run>_<seq of its first text>`);
a run paused for client tools ends with one `function_call` item per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseError,
    ResponseFailedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseOutputItem,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseStatus,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from pydantic import BaseModel

from app.engine.spec import JsonObject
from app.openai_compat.outcomes import arguments_of, client_calls
from app.openai_compat.responses import ResponseShape, failure, usage_of
from app.openai_compat.wire import Template, hole, payload, typed_event
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


@dataclass(slots=True)
class _Turn:
    """The message item of the turn whose text is arriving."""

    item_id: str
    index: int
    delta: Template
    texts: list[str] = field(default_factory=list)


class ResponseEvents:
    """The Responses events of one run (a `Translation`); those numbered up to
    `after` are left out. `response()` is the Response as the events so far make it."""

    def __init__(
        self, shape: ResponseShape, runs: RunService | None = None, *, after: int = -1
    ) -> None:
        self.shape = shape
        self.runs = runs
        self.after = after
        self.number = -1
        self.status: ResponseStatus = "in_progress"
        self.output: list[ResponseOutputItem] = []
        self.usage: ResponseUsage | None = None
        self.error: ResponseError | None = None
        self._turn: _Turn | None = None
        self._end: int | None = None  # the number kept for the terminal event
        self._paused = False

    # The Response --------------------------------------------------------------

    def response(self) -> Response:
        return self.shape.response(self.status, self.output, usage=self.usage, error=self.error)

    async def settle(self) -> None:
        """A paused run's usage: its `RunPaused` event does not carry it."""
        if self._paused and self.usage is None and self.runs is not None:
            metrics = (await self.runs.output(self.shape.fields["id"])).metrics
            self.usage = usage_of(metrics.model_dump())

    # The Translation -----------------------------------------------------------

    def opening(self) -> bytes:
        out: list[bytes] = []
        self._emit(out, ResponseCreatedEvent, type="response.created", response=self.response())
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
                self._emit(
                    out,
                    ResponseInProgressEvent,
                    type="response.in_progress",
                    response=self.response(),
                )
            elif kind in _ENDS:
                self._close_turn(out)
                self._ended(kind, orjson.loads(frame.data))
            elif kind == "RunPaused":
                self._close_turn(out)
                self._pause(out, orjson.loads(frame.data))
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

    def _emit(self, out: list[bytes], event: type[BaseModel], **fields: Any) -> None:
        """The next event, built and encoded only when it is sent."""
        self.number += 1
        if self.number > self.after:
            out.append(typed_event(event(sequence_number=self.number, **fields)))

    def _text(self, frame: Frame, out: list[bytes]) -> None:
        text = orjson.loads(frame.data).get("content")
        if not isinstance(text, str) or not text:
            return
        turn = self._turn or self._open_turn(frame.seq, out)
        turn.texts.append(text)
        self.number += 1
        if self.number > self.after:
            out.append(turn.delta.fill(delta=text, number=self.number))

    def _open_turn(self, seq: int, out: list[bytes]) -> _Turn:
        item_id, index = f"msg_{self.shape.fields['id']}_{seq}", len(self.output)
        item = ResponseOutputMessage(
            id=item_id, type="message", role="assistant", status="in_progress", content=[]
        )
        self._emit(
            out,
            ResponseOutputItemAddedEvent,
            type="response.output_item.added",
            output_index=index,
            item=item,
        )
        self._emit(
            out,
            ResponseContentPartAddedEvent,
            type="response.content_part.added",
            item_id=item_id,
            output_index=index,
            content_index=0,
            part=_part(""),
        )
        delta = payload(
            ResponseTextDeltaEvent(
                type="response.output_text.delta",
                sequence_number=0,
                item_id=item_id,
                output_index=index,
                content_index=0,
                delta=hole("delta"),
                logprobs=[],
            )
        )
        delta["sequence_number"] = hole("number")
        self._turn = _Turn(item_id, index, Template.typed_event(delta))
        return self._turn

    def _close_turn(self, out: list[bytes]) -> None:
        turn, self._turn = self._turn, None
        if turn is None:
            return
        text, item_id, index = "".join(turn.texts), turn.item_id, turn.index
        item = ResponseOutputMessage(
            id=item_id, type="message", role="assistant", status="completed", content=[_part(text)]
        )
        self._emit(
            out,
            ResponseTextDoneEvent,
            type="response.output_text.done",
            item_id=item_id,
            output_index=index,
            content_index=0,
            text=text,
            logprobs=[],
        )
        self._emit(
            out,
            ResponseContentPartDoneEvent,
            type="response.content_part.done",
            item_id=item_id,
            output_index=index,
            content_index=0,
            part=_part(text),
        )
        self._done(out, item)

    def _done(self, out: list[bytes], item: ResponseOutputItem) -> None:
        index = len(self.output)
        self.output.append(item)
        self._emit(
            out,
            ResponseOutputItemDoneEvent,
            type="response.output_item.done",
            output_index=index,
            item=item,
        )

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
        item_id = f"fc_{self.shape.fields['id']}_{call['tool_call_id']}"

        def item(status: str, args: str) -> ResponseFunctionToolCall:
            return ResponseFunctionToolCall.model_validate(
                {"type": "function_call", "id": item_id, "call_id": call["tool_call_id"],
                 "name": call["tool_name"], "arguments": args, "status": status}
            )  # fmt: skip

        self._emit(
            out,
            ResponseOutputItemAddedEvent,
            type="response.output_item.added",
            output_index=index,
            item=item("in_progress", ""),
        )
        self._emit(
            out,
            ResponseFunctionCallArgumentsDeltaEvent,
            type="response.function_call_arguments.delta",
            item_id=item_id,
            output_index=index,
            delta=arguments,
        )
        self._emit(
            out,
            ResponseFunctionCallArgumentsDoneEvent,
            type="response.function_call_arguments.done",
            item_id=item_id,
            output_index=index,
            arguments=arguments,
        )
        self._done(out, item("completed", arguments))

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
        if number <= self.after:
            return
        response = self.response()
        if self.status == "completed":
            event: BaseModel = ResponseCompletedEvent(
                type="response.completed", sequence_number=number, response=response
            )
        elif self.status == "incomplete":
            event = ResponseIncompleteEvent(
                type="response.incomplete", sequence_number=number, response=response
            )
        else:
            event = ResponseFailedEvent(
                type="response.failed", sequence_number=number, response=response
            )
        out.append(typed_event(event))


def _part(text: str) -> ResponseOutputText:
    return ResponseOutputText(type="output_text", text=text, annotations=[], logprobs=[])
