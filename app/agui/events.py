"""A run's stored events as AG-UI events (`AguiStream`, a `Translation`).

One stream is one AG-UI run: it opens with `RUN_STARTED` (the run's
`RunStarted`, or the `RunContinued` of a resumed pause) and ends with
`RUN_FINISHED` (completed; cancelled; paused, as an interrupt listing the
pending calls) or `RUN_ERROR`. Text and reasoning stream as messages; each
tool call is announced once, with its arguments whole, and answered by
`TOOL_CALL_RESULT`; a tool's `CustomEvent` is `CUSTOM`. Before the end, the
thread's state is sent as `STATE_SNAPSHOT` when the client sent one or a tool
ran (tools are what change it). The stored events do not carry the changes a
tool makes to the state, so there is no `STATE_DELTA`: the snapshot is read
from the session once the run has stored its end.

Every frame's SSE id comes from the seq of the event it was made from: `7` for
the first frame of event 7, `7.1`, `7.2` for the next ones, so no id is ever
given to a later frame. A stream resumed from such an id (`resume_after`)
translates the run from its start and sends only the frames after it, opened
by a fresh `RUN_STARTED` and the start of any message left open, both under
the id it resumed from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    ReasoningEndEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    ReasoningStartEvent,
    RunErrorEvent,
    RunFinishedCancelledOutcome,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
    RunStartedEvent,
    StateSnapshotEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    TokenUsage,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)

from app.agui import wire
from app.agui.schemas import interrupt
from app.engine import jsontext
from app.engine.output import Requirement
from app.worker.bus import Frame

Position = tuple[int, int]  # (seq, index of the frame made from that event)
StateReader = Callable[[], Awaitable[dict[str, Any] | None]]


def parse_position(value: str | None) -> Position | None:
    """The position an SSE id names (`7` or `7.2`); None when it names none."""
    if not value:
        return None
    seq, _, index = value.strip().partition(".")
    try:
        position = (int(seq), int(index or 0))
    except ValueError:
        return None
    return position if position >= (0, 0) else None


class AguiStream:
    """Translates one run's frames into the AG-UI events of one AG-UI run."""

    def __init__(
        self,
        *,
        thread_id: str,
        run_id: str,
        stored_run_id: str,
        read_state: StateReader,
        state_wanted: bool = False,
        announced: set[str] | None = None,
        resume_after: str | None = None,
    ) -> None:
        self.thread_id = thread_id
        self.run_id = run_id  # the client's id of this AG-UI run
        self.stored_run_id = stored_run_id  # the run it reads (a resume continues a paused one)
        self.read_state = read_state
        self.state_given = state_wanted  # the client sent its state: send it back
        self.state_wanted = state_wanted
        self.announced = set(announced or ())  # the run's tool calls the client knows
        self.cut = parse_position(resume_after)
        self.cut_id = resume_after.strip() if self.cut is not None and resume_after else ""
        self.done = False
        self.started = False
        self.text: str | None = None  # the open text message
        self.turn_text: str | None = None  # the text message of the current model turn
        self.reasoning: str | None = None  # the open reasoning message
        self._out: list[bytes] = []
        self._seq = 0
        self._index = 0
        self._resumed = False
        self._ending: tuple[BaseEvent, int | None] | None = None  # what `closing` sends
        # What the frames made so far (sent or not) left open, for a resumed client.
        self._open_on_wire: dict[str, BaseEvent] = {}

    # Translation --------------------------------------------------------------

    def opening(self) -> bytes:
        return b""

    def frames(self, batch: list[Frame]) -> bytes:
        for frame in batch:
            if self.done:
                break
            self._seq, self._index = frame.seq, 0
            self._translate(frame)
        return self._flush()

    async def closing(self) -> bytes:
        """The end of this stream's AG-UI run, after the thread's state when it is
        wanted (read now: the run has stored its end). Nothing when the stream
        stopped before it (the server shutting down: the client resumes)."""
        ending, self._ending = self._ending, None
        if ending is not None:
            event, snapshot_at = ending
            if snapshot_at is not None:
                self._index = snapshot_at
                if self._past_cut(self._seq, snapshot_at):
                    state = await self.read_state()
                    if state is not None:
                        self._emit(StateSnapshotEvent(snapshot=state))
                self._index = snapshot_at + 1
            self._emit(event)
        return self._flush()

    def _flush(self) -> bytes:
        out, self._out = b"".join(self._out), []
        return out

    # Events -------------------------------------------------------------------

    def _translate(self, frame: Frame) -> None:
        name = frame.event
        if name == "RunContent":
            self._content(jsontext.loads(frame.data).get("content"))
        elif name in ("RunStarted", "RunContinued"):
            if not self.started:
                self._start()
        elif name == "RunContentCompleted":
            self._close_text()
        elif name == "ReasoningStarted":
            self._open_reasoning()
        elif name == "ReasoningStep":
            self._reasoning(jsontext.loads(frame.data)["reasoning_content"])
        elif name == "ReasoningCompleted":
            self._close_reasoning()
        elif name == "ToolCallStarted":
            self._announce(jsontext.loads(frame.data)["tool"])
        elif name == "ToolCallCompleted":
            self._result(jsontext.loads(frame.data)["tool"])
        elif name == "CustomEvent":
            data = jsontext.loads(frame.data)
            self._emit(CustomEvent(name=data["name"], value=data.get("data")))
        elif name == "RunCompleted":
            self._completed(jsontext.loads(frame.data))
        elif name == "RunPaused":
            self._paused(jsontext.loads(frame.data)["requirements"])
        elif name == "RunError":
            error = jsontext.loads(frame.data)["error"]
            self._end(RunErrorEvent(message=error["message"], code=error["code"]))
        elif name == "RunCancelled":
            self._close_open()
            outcome = RunFinishedCancelledOutcome()
            self._end(self._finished(outcome))

    def _start(self) -> None:
        self.started = True
        self.state_wanted = self.state_given
        if self.cut is None and self.stored_run_id == self.run_id:
            self._emit_encoded(wire.RUN_STARTED.fill(self.thread_id, self.run_id))
        else:
            self._emit(self._run_started())

    def _run_started(self) -> RunStartedEvent:
        metadata = None
        if self.stored_run_id != self.run_id:
            metadata = {"agentd_run_id": self.stored_run_id}
        return RunStartedEvent(thread_id=self.thread_id, run_id=self.run_id, metadata=metadata)

    def _content(self, content: Any) -> None:
        if content is None or content == "":
            return
        self._close_reasoning()
        if self.text is None:
            self.text = self.turn_text = f"{self.stored_run_id}-{self._seq}"
            if self.cut is None:
                self._emit_encoded(wire.TEXT_START.fill(self.text))
            else:
                self._emit(TextMessageStartEvent(message_id=self.text, role="assistant"))
        delta = content if isinstance(content, str) else jsontext.dumps(content).decode()
        self._emit_encoded(wire.delta("TEXT_MESSAGE_CONTENT", self.text, delta))

    def _close_text(self) -> None:
        if self.text is not None:
            if self.cut is None:
                self._emit_encoded(wire.TEXT_END.fill(self.text))
            else:
                self._emit(TextMessageEndEvent(message_id=self.text))
            self.text = None

    def _open_reasoning(self) -> None:
        self._close_text()
        if self.reasoning is None:
            self.reasoning = f"{self.stored_run_id}-r{self._seq}"
            self._emit(ReasoningStartEvent(message_id=self.reasoning))
            self._emit(ReasoningMessageStartEvent(message_id=self.reasoning))

    def _reasoning(self, delta: str) -> None:
        self._open_reasoning()
        if delta and self.reasoning is not None:
            self._emit_encoded(wire.delta("REASONING_MESSAGE_CONTENT", self.reasoning, delta))

    def _close_reasoning(self) -> None:
        if self.reasoning is not None:
            self._emit(ReasoningMessageEndEvent(message_id=self.reasoning))
            self._emit(ReasoningEndEvent(message_id=self.reasoning))
            self.reasoning = None

    def _close_open(self) -> None:
        self._close_text()
        self._close_reasoning()

    def _announce(self, tool: dict[str, Any]) -> None:
        self._close_open()
        call_id = tool["tool_call_id"]
        if call_id in self.announced:
            return
        self.announced.add(call_id)
        name = tool["tool_name"]
        self._emit(
            ToolCallStartEvent(
                tool_call_id=call_id, tool_call_name=name, parent_message_id=self.turn_text
            )
        )
        args = jsontext.dumps(tool.get("tool_args") or {}).decode()
        self._emit(ToolCallArgsEvent(tool_call_id=call_id, delta=args))
        self._emit(ToolCallEndEvent(tool_call_id=call_id))

    def _result(self, tool: dict[str, Any]) -> None:
        self._announce(tool)  # a call this stream has not shown yet
        self.state_wanted = True  # a tool may have changed the thread's state
        self.turn_text = None
        call_id = tool["tool_call_id"]
        result = tool.get("error") if tool.get("status") == "error" else tool.get("result")
        content = result if isinstance(result, str) else jsontext.dumps(result).decode()
        self._emit(
            ToolCallResultEvent(
                message_id=f"{call_id}-result", tool_call_id=call_id, content=content, role="tool"
            )
        )

    def _completed(self, output: dict[str, Any]) -> None:
        self._close_open()
        metrics = output.get("metrics") or {}
        usage = None
        if metrics.get("model_calls"):
            usage = [
                TokenUsage(
                    model=output.get("model") or None,
                    input_tokens=metrics.get("input_tokens", 0),
                    output_tokens=metrics.get("output_tokens", 0),
                    total_tokens=metrics.get("total_tokens", 0),
                )
            ]
        content = output.get("content")
        result = None if isinstance(content, str) else content
        event = self._finished(RunFinishedSuccessOutcome())
        event.result, event.usage = result, usage
        self._end(event, snapshot=True)

    def _paused(self, pending: list[dict[str, Any]]) -> None:
        self._close_open()
        requirements = [Requirement.model_validate(item) for item in pending]
        for requirement in requirements:
            self._announce(
                {
                    "tool_call_id": requirement.tool_call_id,
                    "tool_name": requirement.tool_name,
                    "tool_args": requirement.tool_args,
                }
            )
        interrupts = [interrupt(requirement) for requirement in requirements]
        outcome = RunFinishedInterruptOutcome(interrupts=interrupts)
        self._end(self._finished(outcome), snapshot=True)

    def _finished(self, outcome: Any) -> RunFinishedEvent:
        return RunFinishedEvent(thread_id=self.thread_id, run_id=self.run_id, outcome=outcome)

    def _end(self, event: BaseEvent, *, snapshot: bool = False) -> None:
        """The end of an AG-UI run, after a `STATE_SNAPSHOT` (with `snapshot`, when
        the state is wanted): this stream's end once past the resume point, sent
        by `closing`. The snapshot's place is kept whether or not it is sent, so
        the end's id is the same in every stream of the run."""
        snapshot_at = None
        if snapshot and self.state_wanted:
            snapshot_at = self._index
            self._index += 1
        self.started = False
        self.turn_text = None
        if self.cut is None or (self._seq, self._index) >= self.cut:
            self._ending = (event, snapshot_at)
            self.done = True
        else:
            self._emit(event)  # before the resume point: placed, not sent

    # Frames -------------------------------------------------------------------

    def _past_cut(self, seq: int, index: int) -> bool:
        return self.cut is None or (seq, index) > self.cut

    def _emit(self, event: BaseEvent) -> None:
        if self._place(starts_run=isinstance(event, RunStartedEvent)):
            self._out.append(wire.encode(event))
        if self.cut is not None:
            self._track(event)

    def _emit_encoded(self, encoded: bytes) -> None:
        """An event already encoded (`wire`'s templates and deltas): one a
        resumed stream need not track (a content delta), or any event of a
        stream that is not resumed."""
        if self._place(starts_run=False):
            self._out.append(encoded)

    def _place(self, *, starts_run: bool) -> bool:
        """Give the next frame its id; False when it is not sent (at or before
        the resume point)."""
        seq, index = self._seq, self._index
        self._index += 1
        if not self._past_cut(seq, index):
            return False
        if self.cut is not None and not self._resumed:
            self._resumed = True
            if not starts_run:
                self._reopen()
        frame_id = b"%d" % seq if index == 0 else b"%d.%d" % (seq, index)
        self._out.append(b"id: " + frame_id + b"\n")
        return True

    def _track(self, event: BaseEvent) -> None:
        if isinstance(event, (TextMessageStartEvent, ReasoningMessageStartEvent)):
            self._open_on_wire[event.message_id] = event
        elif isinstance(event, ReasoningStartEvent):
            self._open_on_wire["span:" + event.message_id] = event
        elif isinstance(event, (TextMessageEndEvent, ReasoningMessageEndEvent)):
            self._open_on_wire.pop(event.message_id, None)
        elif isinstance(event, ReasoningEndEvent):
            self._open_on_wire.pop("span:" + event.message_id, None)

    def _reopen(self) -> None:
        """What a client resuming at the cut must see again before the rest: a
        fresh RUN_STARTED and the start of each message the cut left open."""
        cut_id = self.cut_id.encode()
        for event in [self._run_started(), *self._open_on_wire.values()]:
            self._out.append(b"id: " + cut_id + b"\n" + wire.encode(event))
