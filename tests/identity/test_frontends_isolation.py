"""The frontend protocols' ways back into a run keep to the caller's reach: an
AG-UI input naming another user's thread and run with `Last-Event-ID` does not
reconnect to that run's stream, and the chat stream of another user's chat is
as one without an active run (204), while that run is active."""

from __future__ import annotations

import httpx

from tests.identity.conftest import DATA_SCOPES, bearer, hs256

ACME = bearer(hs256({"tenant_id": "acme", "scope": "admin"}))
GLOBEX = bearer(hs256({"tenant_id": "globex", "scope": "admin"}))
U1 = bearer(hs256({"tenant_id": "acme", "sub": "u1", "scope": " ".join(DATA_SCOPES)}))
U2 = bearer(hs256({"tenant_id": "acme", "sub": "u2", "scope": " ".join(DATA_SCOPES)}))
AGUI_INPUT = {
    "threadId": "thread-u1",
    "runId": "agui-run-u1",
    "messages": [{"id": "m1", "role": "user", "content": "hello"}],
}


async def test_agui_does_not_reconnect_to_a_run_outside_reach(http: httpx.AsyncClient) -> None:
    for admin in (ACME, GLOBEX):
        agent = {"id": "echo", "name": "Echo", "model": "test:echo"}
        assert (await http.post("/v1/agents", json=agent, headers=admin)).status_code == 201
    mine = await http.post("/v1/agents/echo/agui", json=AGUI_INPUT, headers=U1)
    assert mine.status_code == 200 and "RUN_FINISHED" in mine.text
    again = {**U1, "Last-Event-ID": "1"}
    resumed = await http.post("/v1/agents/echo/agui", json=AGUI_INPUT, headers=again)
    assert resumed.status_code == 200 and "RUN_STARTED" in resumed.text  # its own: resumed
    for stranger in (U2, GLOBEX):
        answer = await http.post(
            "/v1/agents/echo/agui", json=AGUI_INPUT, headers={**stranger, "Last-Event-ID": "1"}
        )
        assert (answer.status_code, answer.json()["code"]) == (409, "run_exists"), answer.text
        assert "hello" not in answer.text


async def test_another_users_active_chat_has_no_stream(http: httpx.AsyncClient) -> None:
    slow = {"id": "slow", "model": "test:echo", "model_settings": {"chunk_delay": 0.2}}
    assert (await http.post("/v1/agents", json=slow, headers=ACME)).status_code == 201
    body = {"input": "one two three four", "session_id": "chat-u1", "background": True}
    started = await http.post("/v1/agents/slow/runs", json=body, headers=U1)
    assert started.status_code == 202, started.text
    for stranger in (U2, GLOBEX):
        answer = await http.get("/v1/agents/slow/chat/chat-u1/stream", headers=stranger)
        assert answer.status_code in (204, 404), answer.text
        missing = await http.get("/v1/agents/slow/chat/no-such-chat/stream", headers=stranger)
        assert answer.status_code == missing.status_code
    run = (await http.get(f"/v1/runs/{started.json()['run_id']}", headers=U1)).json()
    assert run["status"] in ("queued", "running")  # it was active all along
    own = await http.get("/v1/agents/slow/chat/chat-u1/stream", headers=U1)
    assert own.status_code == 200 and "four" in own.text
