"""The OpenAPI schema against the service: schemathesis with every check, on a real
uvicorn on 127.0.0.1 over SQLite and PostgreSQL, finds nothing.

The test drives schemathesis's engine, the one `st run` uses (all phases). The
server runs in a thread with its own event loop: schemathesis calls it
synchronously from the test. Each backend gets a database of its own, so the
agents and runs generated here never meet another test. A fixed seed and a
small budget keep the run short and the same every time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from app.main import create_app
from tests.conftest import (
    BACKENDS,
    create_postgres_database,
    drop_postgres_database,
    make_settings,
)

MAX_EXAMPLES = 5
SEED = 20240601

CONFIG: dict[str, Any] = {
    "seed": SEED,
    "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
    "request-timeout": 30,
    "max-stream-events": 100,
    "checks": {
        "enabled": True,
        # Schema-valid requests the service still refuses, for reasons JSON Schema cannot
        # state: 400 `malformed_json` for an integer beyond 64 bits nested in a free-form
        # JSON value (an input object, metadata, a tool result), and 422 for what only the
        # service can judge (an unknown model or tool, a regular expression that does not
        # compile, a cursor it never issued, an idempotency key sent with another body).
        "positive_data_acceptance": {
            "expected-statuses": ["2XX", "3XX", 400, 401, 403, 404, 409, 422, 429]
        },
    },
    # Runs are created on the seeded `demo` agent (test:echo), so the run routes run
    # agents rather than answer 404 for a generated id.
    "operations": [
        {"include-path": "/v1/agents/{agent_id}/runs", "parameters": {"agent_id": "demo"}}
    ],
}


@pytest.fixture(scope="module", params=BACKENDS)
def base_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app on a fresh database of the backend, served by uvicorn in a thread."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('conformance') / 'agentd.db'}"
    else:
        url = asyncio.run(create_postgres_database("agentd_conformance"))
    settings = make_settings(url, seed_demo_agent=True)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        if request.param == "postgres":
            asyncio.run(drop_postgres_database(url))


def test_schemathesis_finds_nothing(base_url: str) -> None:
    """Every phase `st run` runs (examples, coverage, fuzzing, stateful), every check."""
    config = SchemathesisConfig.from_dict(CONFIG)
    api = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)
    cases, problems = 0, []
    for event in schemathesis.engine.from_schema(api).execute():
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            for checks in event.recorder.checks.values():
                problems += [
                    f"{event.recorder.label}: {check.name}: {check.failure_info}"
                    for check in checks
                    if check.status == Status.FAILURE
                ]
        elif isinstance(event, events.NonFatalError | events.FatalError):
            problems.append(f"{type(event).__name__}: {event}")
        elif isinstance(event, events.EngineFinished):
            problems += [str(failure) for failure in event.failures]
    print(f"schemathesis: {cases} cases")
    assert cases > 100
    assert problems == []


def test_the_schema_documents_problems_as_problem_json(tmp_path: Path) -> None:
    document = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")).openapi()
    operation = document["paths"]["/v1/agents"]["post"]
    for status in ("400", "401", "409", "413", "415", "422", "503"):
        content = operation["responses"][status]["content"]
        assert content == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }, status
    assert "HTTPValidationError" not in document["components"]["schemas"]
    listing = document["paths"]["/v1/agents"]["get"]["responses"]
    assert "415" not in listing and "413" not in listing
    assert "503" not in document["paths"]["/healthz"]["get"]["responses"]
