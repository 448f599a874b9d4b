"""AG-UI events as SSE bytes: `ag_ui`'s `EventEncoder`, and, for the events every
run sends, the encoder's bytes made once and filled in.

A `Template` is the encoding of one event of a kind, made by the encoder at
import with a marker in each of its string fields; filling it puts each
value's JSON where its marker was. The bytes are the encoder's, without a
model built and dumped per event (tests/frontends/test_agui_wire.py holds
them equal for any text). A content delta, most of a stream's frames, is
written as the encoder writes it too (`delta`).
"""

from __future__ import annotations

from ag_ui.core import (
    BaseEvent,
    RunStartedEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
)
from ag_ui.encoder import EventEncoder

from app.engine import jsontext

ENCODER = EventEncoder()


def encode(event: BaseEvent) -> bytes:
    return ENCODER.encode(event).encode()


class Template:
    """The encoder's bytes for `event`'s kind, its string `fields` filled in per
    event (in the order the encoder writes them)."""

    def __init__(self, event: BaseEvent, *fields: str) -> None:
        unknown = [field for field in fields if field not in type(event).model_fields]
        if unknown:  # the models allow extra fields: a renamed one would be written too
            raise ValueError(f"{type(event).__name__} has no field {unknown[0]}")
        markers = {field: f"@@{field}@@" for field in fields}
        text = encode(event.model_copy(update=markers))
        self.parts = [text]
        for field in fields:
            head, found, tail = self.parts.pop().partition(jsontext.dumps(markers[field]))
            if not found:
                raise ValueError(f"{type(event).__name__} does not write {field} as text")
            self.parts += [head, tail]

    def fill(self, *values: str) -> bytes:
        parts = self.parts
        out = [parts[0]]
        for value, part in zip(values, parts[1:], strict=True):
            out.append(jsontext.dumps(value))
            out.append(part)
        return b"".join(out)


RUN_STARTED = Template(RunStartedEvent(thread_id="", run_id=""), "thread_id", "run_id")
TEXT_START = Template(TextMessageStartEvent(message_id="", role="assistant"), "message_id")
TEXT_END = Template(TextMessageEndEvent(message_id=""), "message_id")


def delta(kind: str, message_id: str, text: str) -> bytes:
    """A `*_MESSAGE_CONTENT` event (`TEXT_MESSAGE_CONTENT`,
    `REASONING_MESSAGE_CONTENT`), whose fields are the same."""
    body = jsontext.dumps({"type": kind, "messageId": message_id, "delta": text})
    return b"data: " + body + b"\n\n"
