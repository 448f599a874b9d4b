"""AguiStream writes content deltas and the events every run sends from
templates the encoder made (app/agui/wire.py): the bytes must stay equal to
the encoder's for any text."""

from __future__ import annotations

import orjson
import pytest
from ag_ui.core import (
    ReasoningMessageContentEvent,
    RunStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
)
from ag_ui.encoder import EventEncoder

from app.agui import wire
from app.agui.events import AguiStream
from app.worker.bus import Frame

TEXTS = ["Hello", 'quote " and \\ backslash', "line\nbreak", "ünïcödé ✓ 🚀", "\u2028\x00", ""]


async def no_state() -> None:
    return None


def frames_of(texts: list[str], kind: str) -> list[Frame]:
    frames = [Frame(1, "RunStarted", b"{}")]
    key = "content" if kind == "RunContent" else "reasoning_content"
    for seq, text in enumerate(texts, start=2):
        frames.append(Frame(seq, kind, orjson.dumps({key: text})))
    return frames


def test_text_deltas_are_written_as_the_encoder_writes_them() -> None:
    stream = AguiStream(thread_id="t", run_id="r", stored_run_id="r", read_state=no_state)
    written = stream.frames(frames_of(TEXTS, "RunContent")).decode()
    encoder = EventEncoder()
    for text in TEXTS[:-1]:  # an empty delta is not sent
        event = TextMessageContentEvent(message_id="r-2", delta=text)
        assert encoder.encode(event) in written


def test_reasoning_deltas_are_written_as_the_encoder_writes_them() -> None:
    stream = AguiStream(thread_id="t", run_id="r", stored_run_id="r", read_state=no_state)
    written = stream.frames(frames_of(TEXTS, "ReasoningStep")).decode()
    encoder = EventEncoder()
    for text in TEXTS[:-1]:
        event = ReasoningMessageContentEvent(message_id="r-r2", delta=text)
        assert encoder.encode(event) in written


@pytest.mark.parametrize("text", TEXTS)
def test_templates_write_what_the_encoder_writes(text: str) -> None:
    encoder = EventEncoder()
    started = RunStartedEvent(thread_id=text, run_id=text + "-run")
    assert wire.RUN_STARTED.fill(text, text + "-run").decode() == encoder.encode(started)
    start = TextMessageStartEvent(message_id=text, role="assistant")
    assert wire.TEXT_START.fill(text).decode() == encoder.encode(start)
    assert wire.TEXT_END.fill(text).decode() == encoder.encode(TextMessageEndEvent(message_id=text))


def test_a_stream_opens_and_closes_its_message_as_the_encoder_writes_them() -> None:
    stream = AguiStream(thread_id='t "1"', run_id="r", stored_run_id="r", read_state=no_state)
    frames = [*frames_of(["Hi"], "RunContent"), Frame(3, "RunContentCompleted", b"{}")]
    written = stream.frames(frames).decode()
    encoder = EventEncoder()
    assert written == (
        "id: 1\n"
        + encoder.encode(RunStartedEvent(thread_id='t "1"', run_id="r"))
        + "id: 2\n"
        + encoder.encode(TextMessageStartEvent(message_id="r-2", role="assistant"))
        + "id: 2.1\n"
        + encoder.encode(TextMessageContentEvent(message_id="r-2", delta="Hi"))
        + "id: 3\n"
        + encoder.encode(TextMessageEndEvent(message_id="r-2"))
    )


def test_a_template_refuses_a_field_the_encoder_does_not_write() -> None:
    """An upgrade that renames a field fails at import, not on the wire."""
    with pytest.raises(ValueError, match="messageId"):
        wire.Template(TextMessageEndEvent(message_id="m"), "messageId")
