"""The official `openai` JavaScript client streams from agentd as well: node runs
tests/js/stream.mjs with the package version pinned in tests/js/package-lock.json
(installed into tests/js/node_modules by `npm ci` when it is not there yet)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from tests.js_clients import js_clients
from tests.runs.conftest import LiveServer


@pytest.fixture(scope="session")
def js_script() -> Path:
    return js_clients() / "stream.mjs"


async def test_the_javascript_client_streams_a_completion_and_a_response(
    served: LiveServer, http: httpx.AsyncClient, js_script: Path
) -> None:
    node = await asyncio.create_subprocess_exec(
        "node",
        str(js_script),
        f"{served.url}/v1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(node.communicate(), timeout=60)
    assert node.returncode == 0, err.decode()
    seen = json.loads(out)
    chat = seen["chat"]
    assert (chat["text"], chat["finish"]) == ("hello from node", ["stop"])
    [chat_id] = chat["ids"]
    run = (await http.get(f"/v1/runs/{chat_id}")).json()
    assert chat["usage"]["completion_tokens"] == run["metrics"]["output_tokens"] == 3
    responses = seen["responses"]
    assert (responses["status"], responses["text"]) == ("completed", "responses from node")
    types = [kind for kind, _ in responses["events"]]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-1] == "response.completed"
    numbers = [number for _, number in responses["events"]]
    assert numbers == list(range(len(numbers)))
    assert (await http.get(f"/v1/runs/{responses['id']}")).json()["status"] == "completed"
