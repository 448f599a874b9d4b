"""Session summaries through the API: shown on the session, in later runs' context."""

from __future__ import annotations

import httpx


def _event_names(text: str) -> list[str]:
    return [line[7:] for line in text.splitlines() if line.startswith("event: ")]


async def test_the_session_shows_its_summary(client: httpx.AsyncClient) -> None:
    agent = {"id": "s", "model": "test:echo", "session_summary": {"enabled": True}}
    assert (await client.post("/v1/agents", json=agent)).status_code == 201
    assert (await client.post("/v1/agents", json={"id": "plain"})).status_code == 201

    for text in ("one", "two"):
        run = await client.post("/v1/agents/s/runs", json={"input": text, "session_id": "c"})
        assert run.json()["status"] == "completed", run.text
    events = await client.get(f"/v1/runs/{run.json()['run_id']}/events")
    assert _event_names(events.text) == [
        "RunStarted",
        "RunContent",
        "RunContentCompleted",
        "SessionSummaryStarted",
        "SessionSummaryCompleted",
        "RunCompleted",
    ]
    session = (await client.get("/v1/sessions/c")).json()
    assert session["summary"]["summary"] == "one\ntwo"
    assert session["summary"]["topics"] == []
    assert session["summary"]["updated_at"].endswith("Z")

    plain = await client.post("/v1/agents/plain/runs", json={"input": "x"})
    assert (await client.get(f"/v1/sessions/{plain.json()['session_id']}")).json()[
        "summary"
    ] is None


async def test_summary_model_must_exist(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/agents", json={"session_summary": {"enabled": True, "model": "test:nope"}}
    )
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["session_summary", "model"]]
