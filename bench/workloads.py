"""The workloads, the three targets (the baselines too: agentd served from
another checkout; and the traced twins: agentd exporting its spans), and what
one run looks like on the wire for each pair: the request bytes, the marker of
the first content event, and the check that tells a completed run from an
error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from bench.client import Reply

PLAIN_AGENT = "bench-plain"
DONE = b"data: [DONE]\n\n"
TOOLS_AGENT = "bench-tools"


@dataclass(frozen=True)
class Point:
    """One workload at one concurrency.

    A steady point (W1-W3) runs for about `Plan.seconds` per pass, between
    `min_runs` and `max_runs` runs (from the rate its warm-up reached). A burst
    point (W4) starts exactly `concurrency` runs at once. `quick` and `full`
    say which modes run the point; `passes` caps its passes in the full run.
    `protocol` is how agentd is asked: its own runs API, the OpenAI-compatible
    `chat` (Chat Completions) or `responses` (the Responses API), or a frontend
    protocol, `agui` (AG-UI) or `vercel` (the AI SDK's UI message stream); the
    floor is always asked the same way.
    """

    key: str
    title: str
    concurrency: int
    stream: bool
    tools: bool
    tokens: int
    token_delay_ms: float = 0.0
    max_runs: int = 2000
    burst: bool = False
    quick: bool = True  # part of --quick
    full: bool = True  # part of the full run
    passes: int | None = None
    protocol: str = "native"

    @property
    def workload(self) -> str:
        return self.key.split("-")[0]


SLOW: dict[str, Any] = {
    "stream": True,
    "tools": False,
    "tokens": 50,
    "token_delay_ms": 20.0,
    "burst": True,
}
POINTS: tuple[Point, ...] = (
    Point("W1-c1", "W1 blocking, 20 tokens, c1", 1, False, False, 20, max_runs=500),
    Point("W1-c32", "W1 blocking, 20 tokens, c32", 32, False, False, 20),
    Point("W2-c32", "W2 streaming, 50 tokens, c32", 32, True, False, 50, max_runs=1500),
    Point(
        "W2chat-c32",
        "W2 through /v1/chat/completions, c32",
        32,
        True,
        False,
        50,
        max_runs=1500,
        quick=False,
        protocol="chat",
    ),
    Point(
        "W2resp-c32",
        "W2 through /v1/responses, c32",
        32,
        True,
        False,
        50,
        max_runs=1500,
        quick=False,
        protocol="responses",
    ),
    Point(
        "W2agui-c32",
        "W2 through AG-UI, c32",
        32,
        True,
        False,
        50,
        max_runs=1500,
        quick=False,
        protocol="agui",
    ),
    Point(
        "W2vercel-c32",
        "W2 through the AI SDK UI message stream, c32",
        32,
        True,
        False,
        50,
        max_runs=1500,
        quick=False,
        protocol="vercel",
    ),
    Point("W3-c32", "W3 tool round trip, c32", 32, False, True, 20, max_runs=1000),
    Point("W4-c64", "W4 64 slow streams (50 x 20 ms) at once", 64, **SLOW, full=False),
    Point("W4-c256", "W4 256 slow streams (50 x 20 ms) at once", 256, **SLOW, quick=False),
    Point("W4-c1024", "W4 1,024 slow streams at once", 1024, **SLOW, quick=False),
    # Past MAX_CONCURRENT_RUNS (1,024): the rest wait queued for a slot, none fails.
    Point("W4-c2000", "W4 2,000 slow streams at once", 2000, **SLOW, quick=False, passes=1),
)


@dataclass(frozen=True)
class Target:
    """A server to measure. `database` is agentd's (`sqlite` or `pg`); `root`, the
    checkout whose `app` package it serves (None: this one); `traced`, whether it
    exports every run's spans to the benchmark's OTLP sink; `keyed`, whether its
    runs are sent with a stored API key of a tenant (`API_KEYS` set)."""

    key: str
    label: str
    agentd: bool
    database: str | None = None
    root: Path | None = None
    traced: bool = False
    keyed: bool = False


TARGETS: tuple[Target, ...] = (
    Target("floor", "floor", False),
    Target("sqlite", "agentd SQLite", True, "sqlite"),
    Target("pg", "agentd PostgreSQL", True, "pg"),
)


def with_baselines(targets: list[Target], roots: list[Path]) -> list[Target]:
    """`targets`, each agentd target followed by one copy per checkout in `roots`
    served from that checkout: key `pg-baseline` (`pg-baseline2`, ... for more),
    label "agentd PostgreSQL (baseline)" (with the checkout's folder name when
    there are several)."""
    out: list[Target] = []
    for target in targets:
        out.append(target)
        if not target.agentd:
            continue
        for number, root in enumerate(roots, 1):
            suffix = "" if number == 1 else str(number)
            named = f" {root.name}" if len(roots) > 1 else ""
            out.append(
                replace(
                    target,
                    key=f"{target.key}-baseline{suffix}",
                    label=f"{target.label} (baseline{named})",
                    root=root,
                )
            )
    return out


def with_traced(targets: list[Target], traced: bool) -> list[Target]:
    """`targets`, and when `traced`, each agentd target of this checkout followed by
    its traced twin: the same agentd (own server, own database) exporting every
    run's spans, key `pg-traced`, label "agentd PostgreSQL, traced"."""
    out: list[Target] = []
    for target in targets:
        out.append(target)
        if traced and target.agentd and target.root is None:
            out.append(
                replace(
                    target, key=f"{target.key}-traced", label=f"{target.label}, traced", traced=True
                )
            )
    return out


def with_keyed(targets: list[Target], keyed: bool) -> list[Target]:
    """`targets`, and when `keyed`, each agentd target of this checkout (traced
    twins aside) followed by its keyed twin: the same agentd with `API_KEYS` set,
    sent every run with a stored key of a tenant, key `pg-keyed`."""
    out: list[Target] = []
    for target in targets:
        out.append(target)
        if keyed and target.agentd and target.root is None and not target.traced:
            out.append(
                replace(
                    target, key=f"{target.key}-keyed", label=f"{target.label}, keyed", keyed=True
                )
            )
    return out


@dataclass(frozen=True)
class Wire:
    """How to make run number i, and how to judge its reply."""

    make: Callable[[int], bytes]
    marker: bytes  # the first content event of a stream (empty: blocking)
    check: Callable[[Reply], str | None]  # None when the run completed


def _post(path: str, port: int, body: bytes, key: str = "") -> bytes:
    auth = b"authorization: Bearer %s\r\n" % key.encode() if key else b""
    return (
        b"POST %s HTTP/1.1\r\nhost: 127.0.0.1:%d\r\ncontent-type: application/json\r\n"
        b"accept: */*\r\n%scontent-length: %d\r\n\r\n%s"
        % (path.encode(), port, auth, len(body), body)
    )


def _problem(reply: Reply) -> str:
    """A short name for a failed reply: the HTTP status and its `code`."""
    try:
        data = orjson.loads(reply.body)
        code = (data.get("error") or {}).get("code") if "error" in data else data.get("code")
    except (orjson.JSONDecodeError, AttributeError):
        code = None
    return f"HTTP {reply.status}" + (f" {code}" if code else "")


def _stream_error(body: bytes) -> str:
    at = body.find(b"event: RunError")
    if at < 0:
        return "stream ended without a terminal event"
    tail = body[at:]
    code_at = tail.find(b'"code":"')
    if code_at < 0:
        return "RunError"
    return "RunError " + tail[code_at + 8 : tail.find(b'"', code_at + 8)].decode(errors="replace")


def _openai_stream(check: Callable[[bytes], bool], end: str) -> Callable[[Reply], str | None]:
    def check_reply(reply: Reply) -> str | None:
        if reply.status != 200:
            return _problem(reply)
        return None if check(reply.body) else f"stream ended without {end}"

    return check_reply


def openai_wire(point: Point, port: int, key: str = "") -> Wire:
    """A W2 run through an OpenAI-compatible route (a fresh session per run, as
    those routes make one)."""
    if point.protocol == "chat":
        body = (
            b'{"model":"%s","messages":[{"role":"user","content":"Hello there"}],"stream":true}'
            % PLAIN_AGENT.encode()
        )
        request = _post("/v1/chat/completions", port, body, key)
        done = _openai_stream(
            lambda b: b'"finish_reason":"stop"' in b and b.endswith(DONE), "[DONE]"
        )
        return Wire(lambda i: request, b'"delta":{"content":"', done)
    body = b'{"model":"%s","input":"Hello there","stream":true}' % PLAIN_AGENT.encode()
    request = _post("/v1/responses", port, body, key)
    completed = _openai_stream(lambda b: b"event: response.completed" in b, "response.completed")
    return Wire(lambda i: request, b"event: response.output_text.delta", completed)


def agui_wire(point: Point, port: int, tag: str, key: str = "") -> Wire:
    """A streaming run through AG-UI: a thread and a run id of its own per run."""
    path = f"/v1/agents/{PLAIN_AGENT}/agui"

    def make(i: int) -> bytes:
        body = (
            b'{"threadId":"%s-%d","runId":"%s-r%d","messages":'
            b'[{"id":"m1","role":"user","content":"Hello there"}]}'
            % (tag.encode(), i, tag.encode(), i)
        )
        return _post(path, port, body, key)

    def check(reply: Reply) -> str | None:
        if reply.status != 200:
            return _problem(reply)
        if b'"type":"RUN_FINISHED"' in reply.body:
            return None
        return "RUN_ERROR" if b'"type":"RUN_ERROR"' in reply.body else "no RUN_FINISHED"

    return Wire(make, b'"type":"TEXT_MESSAGE_CONTENT"', check)


def vercel_wire(point: Point, port: int, tag: str, key: str = "") -> Wire:
    """A streaming run through the AI SDK's UI message stream: a chat per run."""
    path = f"/v1/agents/{PLAIN_AGENT}/chat"

    def make(i: int) -> bytes:
        body = (
            b'{"id":"%s-%d","trigger":"submit-message","messages":[{"id":"m1","role":"user",'
            b'"parts":[{"type":"text","text":"Hello there"}]}]}' % (tag.encode(), i)
        )
        return _post(path, port, body, key)

    def check(reply: Reply) -> str | None:
        if reply.status != 200:
            return _problem(reply)
        if b'"type":"finish","finishReason":"stop"' in reply.body:
            return None
        return "error part" if b'"type":"error"' in reply.body else "no finish part"

    return Wire(make, b'"type":"text-delta"', check)


def agentd_wire(point: Point, port: int, tag: str, key: str = "") -> Wire:
    if point.protocol == "agui":
        return agui_wire(point, port, tag, key)
    if point.protocol == "vercel":
        return vercel_wire(point, port, tag, key)
    if point.protocol != "native":
        return openai_wire(point, port, key)
    agent = TOOLS_AGENT if point.tools else PLAIN_AGENT
    path = f"/v1/agents/{agent}/runs"
    extra = b',"stream":true' if point.stream else b""

    def make(i: int) -> bytes:
        body = b'{"input":"Hello there","session_id":"%s-%d"%s}' % (tag.encode(), i, extra)
        return _post(path, port, body, key)

    def check_blocking(reply: Reply) -> str | None:
        if reply.status != 200:
            return _problem(reply)
        try:
            data = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            return "unreadable JSON"
        if data.get("status") == "completed":
            return None
        return f"run {data.get('status')}: {(data.get('error') or {}).get('code')}"

    def check_stream(reply: Reply) -> str | None:
        if reply.status != 200:
            return _problem(reply)
        if b"event: RunCompleted" in reply.body:
            return None
        return _stream_error(reply.body)

    if point.stream:
        return Wire(make, b"event: RunContent", check_stream)
    return Wire(make, b"", check_blocking)


def floor_wire(point: Point, port: int, tag: str) -> Wire:
    path = "/stream" if point.stream else "/run"
    body = b'{"input":"Hello there","tools":%s}' % (b"true" if point.tools else b"false")
    request = _post(path, port, body)

    def check(reply: Reply) -> str | None:
        if reply.status != 200:
            return _problem(reply)
        if point.stream and b"event: done" not in reply.body:
            return "stream ended without a done event"
        return None

    return Wire(lambda i: request, b"event: content" if point.stream else b"", check)


def wire_for(target: Target, point: Point, port: int, tag: str, key: str = "") -> Wire:
    """Run requests for `target`; on agentd with `key`, sent with that API key."""
    if target.agentd:
        return agentd_wire(point, port, tag, key)
    return floor_wire(point, port, tag)


def agent_definitions() -> list[bytes]:
    """The agents the benchmark creates on an agentd target."""
    common = {"name": "bench", "instructions": "You are terse.", "model": "openai:fake"}
    return [
        orjson.dumps({"id": PLAIN_AGENT, **common}),
        orjson.dumps({"id": TOOLS_AGENT, **common, "tools": ["current_time"]}),
    ]
