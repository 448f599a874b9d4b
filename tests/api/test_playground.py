"""The playground at `/`: a self-contained page that uses the public API only."""

from __future__ import annotations

import re

import httpx

from app.playground import PAGE
from tests.runs.conftest import make_agent
from tests.sse_client import collect


async def test_the_playground_is_served_at_the_root(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in response.headers["content-security-policy"]
    assert '<form id="form">' in response.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text)  # nothing external
    assert "innerHTML" not in response.text  # model output is shown as text only


async def test_the_requests_the_page_makes_are_answered(client: httpx.AsyncClient) -> None:
    """The page lists agents, then streams a run with every event in its own session."""
    for route in ("/v1/agents?limit=200", '"/v1/agents/"', "/runs", "/cancel"):
        assert route in PAGE
    await make_agent(client)
    listed = await client.get("/v1/agents?limit=200")
    assert [agent["id"] for agent in listed.json()["data"]] == ["echo"]
    body = {"input": "hello there", "session_id": "pg-m1x2y3-abc123de", "stream": True,
            "stream_events": True}  # fmt: skip
    async with client.stream("POST", "/v1/agents/echo/runs", json=body) as response:
        assert response.status_code == 200
        events = await collect(response)
    assert events[0].event == "RunStarted" and events[-1].event == "RunCompleted"
    text = "".join(e.data["content"] for e in events if e.event == "RunContent")
    assert text == "hello there"
