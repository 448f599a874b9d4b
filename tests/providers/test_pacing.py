"""Read pacing (`ReadPacer`): on real TCP transports, when a held read resumes and
when it does not; over real HTTP for both providers, a paced answer is whole and
in fewer pieces, and its connection is reused afterwards, also after a cancel."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.engine.models.anthropic import AnthropicModel
from app.engine.models.base import ContentDelta, ModelDelta
from app.engine.models.openai import OpenAIChatModel
from app.engine.models.pacing import PacedStream, ReadPacer, demand_time
from tests.fakes import FakeAnthropicServer, FakeOpenAIServer, Reply
from tests.fakes.script import FakeModelServer, Wait, sse
from tests.providers.helpers import API_KEY, ask
from tests.waiting import wait_for

WINDOW = 0.01


@pytest.fixture
async def transport() -> AsyncIterator[asyncio.Transport]:
    """The client side of a real loopback TCP connection."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    yield writer.transport  # type: ignore[misc]
    writer.close()
    server.close()
    await server.wait_closed()


def busy_clock(busy: list[bool]) -> Callable[[], float]:
    """A CPU clock that runs with the loop's clock while `busy[0]`, else stands still."""
    loop = asyncio.get_running_loop()
    state = {"cpu": 0.0, "at": loop.time()}

    def clock() -> float:
        now = loop.time()
        if busy[0]:
            state["cpu"] += now - state["at"]
        state["at"] = now
        return state["cpu"]

    return clock


async def engaged(
    transport: asyncio.Transport, max_hold: float, busy: list[bool] | None = None
) -> tuple[ReadPacer, PacedStream]:
    """A pacer on a loop counted as saturated (while `busy[0]`), once it says so."""
    pacer = ReadPacer(max_hold, window=WINDOW, cpu_clock=busy_clock(busy or [True]))
    paced = pacer.track(transport)
    await wait_for(lambda: pacer.engaged)
    return pacer, paced


async def test_a_loop_with_room_holds_no_read(transport: asyncio.Transport) -> None:
    pacer = ReadPacer(0.5, window=WINDOW, cpu_clock=busy_clock([False]))
    paced = pacer.track(transport)
    await asyncio.sleep(3 * WINDOW)
    paced.hold()
    assert not pacer.engaged
    assert transport.is_reading()
    assert (pacer.held, pacer.holds) == (0, 0)
    paced.close()


async def test_a_saturated_loop_holds_a_read_for_at_most_max_hold(
    transport: asyncio.Transport,
) -> None:
    pacer, paced = await engaged(transport, 0.1)
    loop = asyncio.get_running_loop()
    held_at = loop.time()
    paced.hold()
    assert not transport.is_reading()
    assert (pacer.held, pacer.holds) == (1, 1)
    paced.hold()  # a second call while held changes nothing
    assert pacer.holds == 1
    await wait_for(transport.is_reading)
    assert loop.time() - held_at >= 0.09
    assert pacer.held == 0
    paced.close()


async def test_held_reads_resume_at_once_when_the_load_drops(
    transport: asyncio.Transport,
) -> None:
    busy = [True]
    pacer, paced = await engaged(transport, 30.0, busy)
    paced.hold()
    assert not transport.is_reading()
    busy[0] = False
    await wait_for(transport.is_reading, within=1.0)  # not 30 s
    assert not pacer.engaged
    paced.hold()  # disengaged: reads go on
    assert transport.is_reading()
    paced.close()


async def test_close_resumes_a_held_read_and_stops_measuring(
    transport: asyncio.Transport,
) -> None:
    pacer, paced = await engaged(transport, 30.0)
    paced.hold()
    paced.close()
    assert transport.is_reading()
    assert pacer.streams == 0
    paced.close()  # twice is harmless
    assert pacer.streams == 0
    await wait_for(lambda: not pacer.engaged)  # nothing tracked: the monitor stops


async def test_a_transport_paused_by_its_owner_is_left_alone(
    transport: asyncio.Transport,
) -> None:
    pacer, paced = await engaged(transport, 0.05)
    transport.pause_reading()  # aiohttp's flow control: its buffer is full
    paced.hold()
    await asyncio.sleep(0.1)
    assert not transport.is_reading()  # not resumed behind its owner's back
    assert pacer.holds == 0
    paced.close()
    assert not transport.is_reading()


async def test_a_pacer_without_max_hold_is_off() -> None:
    assert not ReadPacer(0.0).enabled
    assert ReadPacer(0.2).enabled


# -- over real HTTP -------------------------------------------------------------

WORDS = [f"w{i} " for i in range(30)]


@pytest.fixture(params=["openai", "anthropic"])
def provider(
    request: pytest.FixtureRequest,
    openai_server: FakeOpenAIServer,
    anthropic_server: FakeAnthropicServer,
) -> tuple[FakeModelServer, type[Any]]:
    if request.param == "openai":
        return openai_server, OpenAIChatModel
    return anthropic_server, AnthropicModel


TAIL = b": the body ends a little after the final event\n\n"
# The first piece; a read of the final event alone (held, the loop counted as
# saturated by then); the end of the body shortly after.
OPENAI_ANSWER: list[bytes | Wait] = [
    sse({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
    Wait(0.3),
    sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + b"data: [DONE]\n\n",
    Wait(0.03),
    TAIL,
]
ANTHROPIC_ANSWER: list[bytes | Wait] = [
    sse({"type": "message_start", "message": {"usage": {"input_tokens": 3}}}, "message_start")
    + sse(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        "content_block_start",
    )
    + sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        "content_block_delta",
    ),
    Wait(0.3),
    sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    + sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}, "message_delta")
    + sse({"type": "message_stop"}, "message_stop"),
    Wait(0.03),
    TAIL,
]


def saturated(max_hold: float) -> ReadPacer:
    """A pacer that counts the loop as saturated from its first window on."""
    return ReadPacer(max_hold, window=WINDOW, engage=0.0, release=0.0)


def texts(deltas: list[ModelDelta]) -> list[str]:
    return [d.text for d in deltas if isinstance(d, ContentDelta)]


async def test_a_paced_answer_is_whole_in_fewer_pieces_and_its_connection_reused(
    provider: tuple[FakeModelServer, type[Any]],
) -> None:
    server, model_class = provider
    pacer = saturated(0.12)
    model = model_class(base_url=server.base_url, api_key=API_KEY, pacer=pacer)
    unpaced = model_class(base_url=server.base_url, api_key=API_KEY)
    try:
        server.enqueue(Reply(text=WORDS, delay=0.01), Reply(text=WORDS, delay=0.01))
        async with asyncio.timeout(10):
            paced_deltas = [d async for d in model.stream(ask())]
            plain_deltas = [d async for d in unpaced.stream(ask())]
            server.enqueue(Reply(text="again"))
            again = [d async for d in model.stream(ask())]
    finally:
        await model.aclose()
        await unpaced.aclose()
    assert "".join(texts(paced_deltas)) == "".join(WORDS) == "".join(texts(plain_deltas))
    # 30 words 10 ms apart, read at most every 120 ms: a handful of pieces
    assert len(texts(paced_deltas)) <= 8 < len(texts(plain_deltas))
    assert pacer.holds >= 2
    assert (pacer.held, pacer.streams) == (0, 0)
    assert texts(again) == ["again"]
    paced_peers = [server.requests[0].peer, server.requests[2].peer]
    assert paced_peers[0] is not None and paced_peers[0] == paced_peers[1]  # kept alive


async def test_the_tail_after_the_final_event_is_read_at_once(
    provider: tuple[FakeModelServer, type[Any]],
) -> None:
    """The read of the final event is held, yet the rest of the body is drained at
    once (within its 0.1 s), so the connection stays alive."""
    server, model_class = provider
    raw = OPENAI_ANSWER if model_class is OpenAIChatModel else ANTHROPIC_ANSWER
    busy = [False]
    pacer = ReadPacer(2.0, window=WINDOW, cpu_clock=busy_clock(busy))
    model = model_class(base_url=server.base_url, api_key=API_KEY, pacer=pacer)
    first: list[ModelDelta] = []
    try:
        server.enqueue(Reply(raw=raw), Reply(text="again"))
        async with asyncio.timeout(10):
            async for delta in model.stream(ask()):
                first.append(delta)
                if not busy[0]:  # the first piece read: the loop is saturated from now
                    busy[0] = True
                    await wait_for(lambda: pacer.engaged)
            again = [d async for d in model.stream(ask())]
    finally:
        await model.aclose()
    assert texts(first) == ["Hi"]
    assert pacer.holds == 1
    assert texts(again) == ["again"]
    assert server.requests[0].completed
    assert server.requests[0].peer == server.requests[1].peer


async def test_a_stream_cancelled_while_held_leaves_a_working_client(
    provider: tuple[FakeModelServer, type[Any]],
) -> None:
    server, model_class = provider
    pacer = saturated(5.0)
    model = model_class(base_url=server.base_url, api_key=API_KEY, pacer=pacer)
    try:
        server.enqueue(Reply(text=WORDS, delay=0.01))
        seen: list[ModelDelta] = []

        async def read() -> None:
            async for delta in model.stream(ask()):
                seen.append(delta)

        task = asyncio.create_task(read())
        await wait_for(lambda: pacer.held == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (pacer.held, pacer.streams) == (0, 0)
        pacer.max_hold = 0.05
        server.enqueue(Reply(text="after"))
        async with asyncio.timeout(5):
            after = [d async for d in model.stream(ask())]
    finally:
        await model.aclose()
    assert texts(after) == ["after"]


def test_the_load_signal_counts_the_time_spent_waiting_for_a_cpu() -> None:
    """A loop sharing its core is saturated below 100% CPU: the signal counts the
    time the thread waited for the core too (Linux), not only its CPU time."""
    previous = os.sched_getaffinity(0)
    core = min(previous)
    rival = subprocess.Popen(
        [sys.executable, "-c", "while True: pass"],
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )
    try:
        os.sched_setaffinity(0, {core})  # this thread only
        time.sleep(0.05)
        wall, cpu, demand = time.monotonic(), time.thread_time(), demand_time()
        while time.monotonic() - wall < 0.4:
            pass
        wall, cpu, demand = (
            time.monotonic() - wall,
            time.thread_time() - cpu,
            demand_time() - demand,
        )
    finally:
        os.sched_setaffinity(0, previous)
        rival.kill()
        rival.wait()
    assert cpu < 0.8 * wall  # the rival had a share of the core
    assert demand >= 0.9 * wall  # running or waiting to run, all along
