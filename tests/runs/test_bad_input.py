"""Bad input on every run and session route: a 4xx problem+json, and the
database exactly as it was."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import snapshot
from tests.runs.conftest import make_agent

CASES: list[tuple[str, str, str, Any, int, str]] = [
    ("no input", "POST", "/v1/agents/echo/runs", {}, 422, "validation_error"),
    (
        "unknown field",
        "POST",
        "/v1/agents/echo/runs",
        {"input": "x", "nope": 1},
        422,
        "validation_error",
    ),
    ("bad input type", "POST", "/v1/agents/echo/runs", {"input": 5}, 422, "validation_error"),
    (
        "bad message role",
        "POST",
        "/v1/agents/echo/runs",
        {"input": [{"role": "robot", "content": "x"}]},
        422,
        "validation_error",
    ),
    (
        "bad session id",
        "POST",
        "/v1/agents/echo/runs",
        {"input": "x", "session_id": "a b"},
        422,
        "validation_error",
    ),
    (
        "bad strategy",
        "POST",
        "/v1/agents/echo/runs",
        {"input": "x", "multitask_strategy": "later"},
        422,
        "validation_error",
    ),
    (
        "bad override model",
        "POST",
        "/v1/agents/echo/runs",
        {"input": "x", "run_config": {"model": "nope:x"}},
        422,
        "validation_error",
    ),
    (
        "bad output schema",
        "POST",
        "/v1/agents/echo/runs",
        {"input": "x", "output_schema": {"type": 7}},
        422,
        "validation_error",
    ),
    (
        "output schema $ref to nowhere",
        "POST",
        "/v1/agents/echo/runs",
        {"input": "x", "output_schema": {"properties": {"a": {"$ref": "#/defs/x"}}}},
        422,
        "validation_error",
    ),
    (
        "max_turns zero",
        "POST",
        "/v1/agents/echo/runs",
        {"input": "x", "run_config": {"max_turns": 0}},
        422,
        "validation_error",
    ),
    (
        "bad image",
        "POST",
        "/v1/agents/echo/runs",
        {"input": "x", "images": [{}]},
        422,
        "validation_error",
    ),
    (
        "object input vs schema",
        "POST",
        "/v1/agents/typed/runs",
        {"input": {"n": "x"}},
        422,
        "validation_error",
    ),
    ("unknown agent", "POST", "/v1/agents/ghost/runs", {"input": "x"}, 404, "agent_not_found"),
    ("malformed json", "POST", "/v1/agents/echo/runs", b"{", 400, "malformed_json"),
    # JSON that Python's parser takes but the service could not store.
    *(
        (name, "POST", "/v1/agents/echo/runs", raw, 400, "malformed_json")
        for name, raw in (
            ("integer over 64 bits", b'{"input":"x","metadata":{"a":99999999999999999999999}}'),
            ("integer under -2**63", b'{"input":"x","session_state":{"a":-9223372036854775809}}'),
            ("integer over 64 bits in input", b'{"input":{"n":18446744073709551616}}'),
            ("lone surrogate", b'{"input":"x\\ud800"}'),
            ("lone surrogate in metadata", b'{"input":"x","metadata":{"a":"\\udfff"}}'),
            ("not utf-8", b'{"input":"\xff\xfe"}'),
            ("NaN", b'{"input":"x","metadata":{"a":NaN}}'),
            ("deep nesting", b'{"input":"x","metadata":{"a":' + b"[" * 5000 + b"]" * 5000 + b"}}"),
        )
    ),
    (
        "integer over 64 bits in an agent",
        "POST",
        "/v1/agents",
        b'{"id":"big","max_turns":99999999999999999999999}',
        400,
        "malformed_json",
    ),
    (
        "integer over 64 bits in a session",
        "PATCH",
        "/v1/sessions/s-1",
        b'{"session_state":{"x":99999999999999999999999}}',
        400,
        "malformed_json",
    ),
    ("unknown run", "GET", "/v1/runs/nope", None, 404, "run_not_found"),
    ("unknown run events", "GET", "/v1/runs/nope/events", None, 404, "run_not_found"),
    ("bad after", "GET", "/v1/runs/nope/events?after=-1", None, 422, "validation_error"),
    (
        "after past any seq",
        "GET",
        "/v1/runs/nope/events?after=9223372036854775808",
        None,
        422,
        "validation_error",
    ),
    ("continue unknown", "POST", "/v1/runs/nope/continue", {"tools": []}, 404, "run_not_found"),
    (
        "continue bad body",
        "POST",
        "/v1/runs/nope/continue",
        {"tools": "x"},
        422,
        "validation_error",
    ),
    # (An id a client could still choose keeps the cancel for it: test_retries.py.)
    ("cancel unknown", "POST", "/v1/runs/_nope/cancel", None, 404, "run_not_found"),
    ("runs bad status", "GET", "/v1/runs?status=sleeping", None, 422, "validation_error"),
    ("runs bad cursor", "GET", "/v1/runs?cursor=zzz", None, 422, "validation_error"),
    ("sessions bad cursor", "GET", "/v1/sessions?cursor=WyJ4Il0", None, 422, "validation_error"),
    # Cursors of the right length holding the wrong kinds of values.
    *(
        (
            f"{path} cursor {cursor}",
            "GET",
            f"/v1/{path}?cursor={cursor}",
            None,
            422,
            "validation_error",
        )
        for path, cursor in (
            ("runs", "W3siYSI6MX1d"),  # [{"a": 1}]
            ("runs", "WzFd"),  # [1]
            ("runs", "W251bGxd"),  # [null]
            ("agents", "W3siYSI6MX1d"),
            ("agents", "WzFd"),
            ("sessions", "WyIyMDIwLTAxLTAxIiwieCJd"),  # ["2020-01-01", "x"]: no offset
            ("sessions", "WzEsIngiXQ"),  # [1, "x"]
        )
    ),
    ("unknown session", "GET", "/v1/sessions/nope", None, 404, "session_not_found"),
    (
        "patch unknown session",
        "PATCH",
        "/v1/sessions/nope",
        {"session_state": {}},
        404,
        "session_not_found",
    ),
    ("patch bad body", "PATCH", "/v1/sessions/s-1", {"state": {}}, 422, "validation_error"),
    (
        "patch state not object",
        "PATCH",
        "/v1/sessions/s-1",
        {"session_state": [1]},
        422,
        "validation_error",
    ),
    ("delete unknown session", "DELETE", "/v1/sessions/nope", None, 404, "session_not_found"),
]


@pytest.mark.parametrize(
    ("case", "method", "url", "body", "status", "code"), CASES, ids=[c[0] for c in CASES]
)
async def test_bad_input_changes_nothing(
    client: httpx.AsyncClient,
    db_engine: AsyncEngine,
    case: str,
    method: str,
    url: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    await make_agent(client)
    await make_agent(
        client,
        id="typed",
        input_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
    )
    await client.post("/v1/agents/echo/runs", json={"input": "seed", "session_id": "s-1"})
    before = await snapshot(db_engine)
    kwargs: dict[str, Any] = {}
    if isinstance(body, bytes):
        kwargs = {"content": body, "headers": {"content-type": "application/json"}}
    elif body is not None:
        kwargs = {"json": body}
    response = await client.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert await snapshot(db_engine) == before


async def test_continue_with_wrong_decisions_changes_nothing(
    client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    await make_agent(
        client, model="test:tools", tools=[{"name": "current_time", "requires_confirmation": True}]
    )
    paused = (await client.post("/v1/agents/echo/runs", json={"input": "go"})).json()
    call_id = paused["requirements"][0]["tool_call_id"]
    before = await snapshot(db_engine)
    for decisions in (
        [],
        [{"tool_call_id": "other", "confirmed": True}],
        [
            {"tool_call_id": call_id, "confirmed": True},
            {"tool_call_id": call_id, "confirmed": False},
        ],
        [{"tool_call_id": call_id, "result": "x"}],
    ):
        response = await client.post(
            f"/v1/runs/{paused['run_id']}/continue", json={"tools": decisions}
        )
        assert response.status_code == 422, (decisions, response.text)
        assert response.json()["errors"]
    assert await snapshot(db_engine) == before
