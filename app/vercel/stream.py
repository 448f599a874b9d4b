"""A run's stored events as the AI SDK's UI message stream (`UIMessageStream`,
a `Translation`): `data:` lines of UI message chunks, then `data: [DONE]`.

The run is one assistant message (its id is the run's id): `start`, a step
per model turn (`start-step` / `finish-step`), text and reasoning parts
(`text-start` / `text-delta` / `text-end`, `reasoning-*`), each tool call as
`tool-input-start`, `tool-input-delta` (its arguments whole) and
`tool-input-available`, then `tool-output-available` (`tool-output-error`,
`tool-output-denied`). A tool's `CustomEvent` is a `data-<name>` part. The
run ends with `finish` (or `error` then `finish`, or `abort`). A pause ends
the stream too: a call waiting for approval gets a `tool-approval-request`;
a client tool's call is left `input-available` for the client to answer.
When the run goes on past a pause in the same stream (a replay of a run that
was continued since), the stream goes on without ending there.
"""

from __future__ import annotations

from typing import Any

from app.engine import jsontext
from app.engine.output import Requirement
from app.worker.bus import Frame

DONE = b"data: [DONE]\n\n"
HEADERS = {"x-vercel-ai-ui-message-stream": "v1"}
FINISH_REASONS = {"RunCompleted": "stop", "RunPaused": "tool-calls", "RunError": "error"}


def chunk(part: dict[str, Any]) -> bytes:
    return b"data: " + jsontext.dumps(part) + b"\n\n"


class UIMessageStream:
    """Translates one run's frames into UI message chunks."""

    def __init__(self, run_id: str, announced: set[str] | None = None) -> None:
        self.run_id = run_id
        self.announced = set(announced or ())  # tool calls the client already shows
        self.done = False
        self.started = False
        self.in_step = False
        self.after_results = False  # tool results came: the model's next turn is a new step
        self.text: str | None = None
        self.reasoning: str | None = None
        self.paused = False  # a pause was the last thing: the stream ends, unless more follows
        self._out: list[bytes] = []

    def opening(self) -> bytes:
        return b""

    def frames(self, batch: list[Frame]) -> bytes:
        for frame in batch:
            self._translate(frame)
        out, self._out = b"".join(self._out), []
        return out

    async def closing(self) -> bytes:
        """A pause ends the message: the steps close and `finish`, then `[DONE]`.
        Nothing after the run's end (already sent), or when the stream stopped
        early (the server shutting down: `useChat` resumes it)."""
        if not self.paused:
            return b""
        self.paused = False
        self._finish("tool-calls")
        out, self._out = b"".join([*self._out, DONE]), []
        return out

    def _translate(self, frame: Frame) -> None:
        name = frame.event
        if self.paused and name == "RunContinued":
            self.paused = False  # the pause was answered: the same message goes on
        if name == "RunContent":
            content = jsontext.loads(frame.data).get("content")
            if content is not None and content != "":
                self._text(content, frame.seq)
        elif name in ("RunStarted", "RunContinued"):
            self._start()
        elif name == "RunContentCompleted":
            self._close_text()
        elif name in ("ReasoningStarted", "ReasoningStep"):
            delta = jsontext.loads(frame.data).get("reasoning_content", "")
            self._reasoning(delta, frame.seq)
        elif name == "ReasoningCompleted":
            self._close_reasoning()
        elif name == "ToolCallStarted":
            self._announce(jsontext.loads(frame.data)["tool"])
        elif name == "ToolCallCompleted":
            self._result(jsontext.loads(frame.data)["tool"])
        elif name == "CustomEvent":
            data = jsontext.loads(frame.data)
            self._step()
            self._out.append(chunk({"type": f"data-{data['name']}", "data": data.get("data")}))
        elif name == "RunPaused":
            self._paused(jsontext.loads(frame.data)["requirements"])
        elif name == "RunCompleted":
            self._finish("stop")
            self._out.append(DONE)
            self.done = True
        elif name == "RunError":
            error = jsontext.loads(frame.data)["error"]
            self._close_open()
            self._out.append(chunk({"type": "error", "errorText": error["message"]}))
            self._finish("error")
            self._out.append(DONE)
            self.done = True
        elif name == "RunCancelled":
            self._close_open()
            self._out.append(chunk({"type": "abort", "reason": "The run was cancelled."}))
            self._out.append(DONE)
            self.done = True

    def _start(self) -> None:
        if not self.started:
            self.started = True
            self._out.append(chunk({"type": "start", "messageId": self.run_id}))

    def _step(self) -> None:
        """Be inside a step: the current one, or a new one after tool results."""
        if self.after_results:
            self.after_results = False
            self._end_step()
        self._open_step()

    def _open_step(self) -> None:
        self._start()
        if not self.in_step:
            self.in_step = True
            self._out.append(b'data: {"type":"start-step"}\n\n')

    def _end_step(self) -> None:
        self._close_open()
        if self.in_step:
            self.in_step = False
            self._out.append(b'data: {"type":"finish-step"}\n\n')

    def _text(self, content: Any, seq: int) -> None:
        self._close_reasoning()
        self._step()
        if self.text is None:
            self.text = f"text-{seq}"
            self._out.append(chunk({"type": "text-start", "id": self.text}))
        delta = content if isinstance(content, str) else jsontext.dumps(content).decode()
        self._out.append(chunk({"type": "text-delta", "id": self.text, "delta": delta}))

    def _close_text(self) -> None:
        if self.text is not None:
            self._out.append(chunk({"type": "text-end", "id": self.text}))
            self.text = None

    def _reasoning(self, delta: str, seq: int) -> None:
        self._close_text()
        self._step()
        if self.reasoning is None:
            self.reasoning = f"reasoning-{seq}"
            self._out.append(chunk({"type": "reasoning-start", "id": self.reasoning}))
        if delta:
            part = {"type": "reasoning-delta", "id": self.reasoning, "delta": delta}
            self._out.append(chunk(part))

    def _close_reasoning(self) -> None:
        if self.reasoning is not None:
            self._out.append(chunk({"type": "reasoning-end", "id": self.reasoning}))
            self.reasoning = None

    def _close_open(self) -> None:
        self._close_text()
        self._close_reasoning()

    def _announce(self, tool: dict[str, Any]) -> None:
        self._close_open()
        call_id = tool["tool_call_id"]
        if call_id in self.announced:
            return
        self._step()
        self.announced.add(call_id)
        name, args = tool["tool_name"], tool.get("tool_args") or {}
        self._out.append(
            chunk({"type": "tool-input-start", "toolCallId": call_id, "toolName": name})
            + chunk(
                {
                    "type": "tool-input-delta",
                    "toolCallId": call_id,
                    "inputTextDelta": jsontext.dumps(args).decode(),
                }
            )
            + chunk(
                {
                    "type": "tool-input-available",
                    "toolCallId": call_id,
                    "toolName": name,
                    "input": args,
                }
            )
        )

    def _result(self, tool: dict[str, Any]) -> None:
        self._announce(tool)
        self._open_step()
        call_id, outcome = tool["tool_call_id"], tool.get("status")
        if outcome == "rejected":
            part: dict[str, Any] = {"type": "tool-output-denied", "toolCallId": call_id}
        elif outcome == "error":
            part = {"type": "tool-output-error", "toolCallId": call_id, "errorText": tool["error"]}
        else:
            part = {
                "type": "tool-output-available",
                "toolCallId": call_id,
                "output": tool["result"],
            }
        self._out.append(chunk(part))
        self.after_results = True

    def _paused(self, pending: list[dict[str, Any]]) -> None:
        self._close_open()
        for requirement in (Requirement.model_validate(item) for item in pending):
            self._announce(requirement.model_dump())
            if requirement.kind == "confirmation":
                call_id = requirement.tool_call_id
                part = {
                    "type": "tool-approval-request",
                    "approvalId": call_id,
                    "toolCallId": call_id,
                }
                self._out.append(chunk(part))
        self.paused = True

    def _finish(self, reason: str) -> None:
        self._start()
        self.after_results = False
        self._end_step()
        self._out.append(chunk({"type": "finish", "finishReason": reason}))
