"""AguiStream writes content deltas itself, as EventEncoder writes them: the
bytes must stay equal to the encoder's for any text."""

from __future__ import annotations

import orjson
from ag_ui.core import ReasoningMessageContentEvent, TextMessageContentEvent
from ag_ui.encoder import EventEncoder

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
