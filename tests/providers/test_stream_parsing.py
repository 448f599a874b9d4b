"""The stream parsers on event sequences real servers send but the fakes do not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import orjson
import pytest

from app.engine.models import anthropic, http, openai
from app.engine.models.base import (
    ContentDelta,
    FinishDelta,
    ModelDelta,
    ModelProviderError,
    ReasoningDelta,
    ToolCallDelta,
    UsageDelta,
)


def event(payload: Any) -> http.SSEvent:
    if isinstance(payload, tuple):
        name, data = payload
        return http.SSEvent(name, orjson.dumps(data))
    data = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
    return http.SSEvent("message", data)


async def events(*payloads: Any) -> AsyncIterator[list[http.SSEvent]]:
    """One event per read, unless a payload is a list: those arrive together."""
    for payload in payloads:
        yield [event(p) for p in payload] if isinstance(payload, list) else [event(payload)]


async def chat(*payloads: Any) -> list[ModelDelta]:
    return [delta async for delta in openai.parse_stream(events(*payloads))]


def choice(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


async def test_repeated_ids_and_names_are_sent_once_per_call() -> None:
    call = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}
    again = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}

    deltas = await chat(
        choice({"tool_calls": [call]}), choice({"tool_calls": [again]}, "tool_calls")
    )

    assert deltas[:2] == [ToolCallDelta(0, "c1", "f", "{}"), ToolCallDelta(0, None, None, "")]


async def test_whole_calls_without_an_index_are_numbered_by_position() -> None:
    calls = [
        {"id": "a", "function": {"name": "f", "arguments": "{}"}},
        {"id": "b", "function": {"name": "g", "arguments": "{}"}},
    ]

    deltas = await chat(choice({"tool_calls": calls}, "tool_calls"), "[DONE]")

    assert deltas[:2] == [ToolCallDelta(0, "a", "f", "{}"), ToolCallDelta(1, "b", "g", "{}")]


async def test_usage_sent_on_every_chunk_counts_once() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1}
    final = {"prompt_tokens": 3, "completion_tokens": 2}

    deltas = await chat(
        choice({"content": "a"}, usage=usage), choice({"content": "b"}, "stop", usage=final)
    )

    assert deltas == [ContentDelta("a"), ContentDelta("b"), UsageDelta(3, 2), FinishDelta("stop")]


async def test_done_without_a_finish_reason_infers_it() -> None:
    assert (await chat(choice({"content": "a"}), "[DONE]"))[-1] == FinishDelta("stop")


async def test_a_chat_stream_cut_off_before_the_end_raises() -> None:
    with pytest.raises(ModelProviderError, match="ended early"):
        await chat(choice({"content": "a"}))


async def test_bad_json_raises() -> None:
    with pytest.raises(orjson.JSONDecodeError):  # the provider maps it to ModelProviderError
        await chat("{not json")


async def test_an_error_event_with_a_numeric_code_keeps_it_as_status() -> None:
    with pytest.raises(ModelProviderError, match="context too long") as caught:
        await chat({"error": {"message": "context too long", "code": 400}})

    assert caught.value.status_code == 400


async def claude(*payloads: Any, output: str | None = None) -> list[ModelDelta]:
    return [delta async for delta in anthropic.parse_stream(events(*payloads), output)]


async def test_cache_tokens_count_as_input_and_the_last_output_count_wins() -> None:
    start = {"message": {"usage": {"input_tokens": 5, "cache_read_input_tokens": 100,
                                   "output_tokens": 1}}}  # fmt: skip
    deltas = await claude(
        ("message_start", {"type": "message_start", **start}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                           "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}),
    )  # fmt: skip

    assert deltas == [UsageDelta(105, 9), FinishDelta("length")]


async def test_a_messages_stream_cut_off_before_message_stop_raises() -> None:
    with pytest.raises(ModelProviderError, match="ended early"):
        await claude(("message_start", {"type": "message_start", "message": {}}))


async def test_text_that_arrives_together_is_one_delta() -> None:
    deltas = await chat(
        [choice({"content": "a"}), choice({"content": "b"}), choice({"reasoning_content": "r"})],
        [choice({"reasoning_content": "s"}), choice({"content": "c"}), choice({}, "stop")],
        "[DONE]",
    )
    assert deltas == [
        ContentDelta("ab"),
        ReasoningDelta("r"),
        ReasoningDelta("s"),  # another read: its own delta
        ContentDelta("c"),
        FinishDelta("stop"),
    ]


async def test_a_tool_call_between_texts_of_one_read_keeps_their_order() -> None:
    call = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}
    deltas = await chat(
        [choice({"content": "a"}), choice({"content": "b", "tool_calls": [call]})],
        [choice({"content": "c"}), choice({"content": "d"}, "tool_calls")],
        "[DONE]",
    )
    assert deltas == [
        ContentDelta("ab"),  # a chunk's text comes before its calls
        ToolCallDelta(0, "c1", "f", "{}"),
        ContentDelta("cd"),
        FinishDelta("tool_calls"),
    ]


async def test_messages_text_that_arrives_together_is_one_delta() -> None:
    def delta(kind: str, **fields: str) -> tuple[str, dict[str, Any]]:
        body = {"type": kind, **fields}
        return "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": body}

    deltas = await claude(
        [delta("thinking_delta", thinking="r"), delta("thinking_delta", thinking="s")],
        [delta("text_delta", text="a"), delta("text_delta", text="b")],
        [delta("text_delta", text="c"), ("message_stop", {"type": "message_stop"})],
    )
    assert deltas[:3] == [ReasoningDelta("rs"), ContentDelta("ab"), ContentDelta("c")]


async def test_what_arrived_before_an_error_in_the_same_read_comes_first() -> None:
    received: list[ModelDelta] = []
    with pytest.raises(ModelProviderError, match="overloaded"):
        async for delta in openai.parse_stream(
            events([choice({"content": "a"}), choice({"content": "b"}), {"error": "overloaded"}])
        ):
            received.append(delta)
    assert received == [ContentDelta("ab")]


class RawBody(httpx2.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def sse_response(chunks: list[bytes], content_type: str = "text/event-stream") -> httpx2.Response:
    return httpx2.Response(200, headers={"content-type": content_type}, stream=RawBody(chunks))


async def read_batches(response: httpx2.Response) -> list[list[tuple[str, bytes]]]:
    return [[(e.event, e.data) for e in batch] async for batch in http.SSEStream(response)]


async def test_sse_lines_split_anywhere_and_any_line_ending() -> None:
    body = (
        b": comment\r\n"
        b"event: delta\r\ndata: one\r\n\r\n"
        b"data: two\rdata: lines\r\r"
        b"id: 7\nretry: 10\ndata:three\n\n"
        b"data: never ended"
    )
    # the same body in one read and cut into pieces of every size (a CRLF cut in two)
    whole = await read_batches(sse_response([body]))
    assert whole == [[("delta", b"one"), ("message", b"two\nlines"), ("message", b"three")]]
    for size in (1, 2, 3, 7):
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        batches = await read_batches(sse_response(pieces))
        assert [e for batch in batches for e in batch] == whole[0], size


async def test_sse_whole_events_in_one_read_match_the_line_by_line_reading() -> None:
    # What providers send (LF only, one `data` line, `event` first for Anthropic),
    # mixed with what only the line-by-line path reads: every cut gives the same events.
    body = (
        b'data: {"a": 1}\n\n'
        b'event: content_block_delta\ndata: {"b": 2}\n\n'
        b": keep-alive\n\n"
        b"\n"
        b"data: two\ndata: lines\n\n"
        b"event: ping\n\n"
        b"id: 3\ndata: after an id\n\n"
        b"data:no space\n\n"
        b"data: [DONE]\n\n"
    )
    expected = [
        ("message", b'{"a": 1}'),
        ("content_block_delta", b'{"b": 2}'),
        ("message", b"two\nlines"),
        ("ping", b""),
        ("message", b"after an id"),
        ("message", b"no space"),
        ("message", b"[DONE]"),
    ]
    assert await read_batches(sse_response([body])) == [expected]
    for size in (1, 5, 9, 16, 40):
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        batches = await read_batches(sse_response(pieces))
        assert [e for batch in batches for e in batch] == expected, size


async def test_sse_rejects_other_content_and_oversized_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(httpx2.SSEError, match="text/event-stream"):
        await read_batches(sse_response([b"data: x\n\n"], content_type="text/html"))
    monkeypatch.setattr(http, "MAX_EVENT_BYTES", 10)
    with pytest.raises(httpx2.SSEError, match="byte limit"):
        await read_batches(sse_response([b"data: 0123", b"456789\n"]))
    with pytest.raises(httpx2.SSEError, match="byte limit"):
        await read_batches(sse_response([b"data: 01\ndata: 23456\n"]))
    with pytest.raises(httpx2.SSEError, match="byte limit"):  # a whole event in one read
        await read_batches(sse_response([b"data: 0123456789\n\n"]))
