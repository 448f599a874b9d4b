"""Errors on the OpenAI-compatible routes come in OpenAI's shape, so the official
client raises its own exceptions, with `code` and `param` set."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai import (
    AsyncOpenAI,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
)

from tests.conftest import make_settings
from tests.runs.conftest import serving

HI = [{"role": "user", "content": "hi"}]


def shape(response: httpx.Response) -> dict[str, Any]:
    """The error body, checked to hold exactly OpenAI's fields."""
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert list(body) == ["error"]
    assert sorted(body["error"]) == ["code", "message", "param", "type"]
    return body["error"]


async def test_an_unknown_model_is_model_not_found(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    with pytest.raises(NotFoundError) as chat:
        await oai.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError) as responses:
        await oai.responses.create(model="gpt-4o", input="hi")
    for raised in (chat, responses):
        assert (raised.value.code, raised.value.param) == ("model_not_found", "model")
        assert raised.value.type == "invalid_request_error"
    with pytest.raises(NotFoundError):
        await oai.models.retrieve("gpt-4o")
    error = shape(await http.post("/v1/responses", json={"model": "nope", "input": "x"}))
    assert error["type"] == "invalid_request_error" and "'nope'" in error["message"]


async def test_a_body_that_does_not_validate_is_400_naming_the_parameter(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/chat/completions", {"model": "echo"}, "messages"),
        ("/v1/chat/completions", {"model": "echo", "messages": [{"role": "robot"}]}, "messages[0]"),
        (
            "/v1/chat/completions",
            {"model": "echo", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
        ),
        ("/v1/chat/completions", {"model": "echo", "messages": HI, "colour": "red"}, "colour"),
        ("/v1/responses", {"model": "echo", "input": [{"type": "image"}]}, "input[0]"),
        (
            "/v1/responses",
            {"model": "echo", "input": "x", "text": {"format": {"type": "json_schema"}}},
            "text.format.name",
        ),
        ("/v1/responses", {"model": "echo", "input": "x", "store": False}, "store"),
        (
            "/v1/responses",
            {"model": "echo", "input": "x", "tool_choice": "required"},
            "tool_choice",
        ),
    ]
    for path, body, param in cases:
        error = shape(await http.post(path, json=body))
        assert (error["type"], error["param"]) == ("invalid_request_error", param), (body, error)
    malformed = await http.post(
        "/v1/chat/completions", content=b"{", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400 and shape(malformed)["code"] == "invalid_json"
    # A run input the engine refuses names the message it came from.
    unanswered = [{"role": "tool", "tool_call_id": "c9", "content": "x"}]
    with pytest.raises(BadRequestError) as raised:
        await oai.chat.completions.create(model="echo", messages=unanswered)  # type: ignore[list-item]
    assert raised.value.param == "messages[0].tool_call_id"
    assert (await http.get("/v1/runs")).json()["data"] == []


async def test_unknown_responses_are_not_found(oai: AsyncOpenAI, http: httpx.AsyncClient) -> None:
    with pytest.raises(NotFoundError):
        await oai.responses.retrieve("no-such-id")
    with pytest.raises(NotFoundError):
        await oai.responses.delete("no-such-id")
    assert shape(await http.get("/v1/responses/no-such-id"))["code"] == "run_not_found"
    negative = await http.get("/v1/responses/x", params={"stream": "true", "starting_after": -1})
    assert shape(negative)["param"] == "starting_after"


async def test_a_failed_run_is_an_error_not_to_retry(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    with pytest.raises(InternalServerError) as raised:
        await oai.chat.completions.create(model="broken", messages=HI)
    assert raised.value.code == "model_provider_error"
    assert raised.value.response.headers["x-should-retry"] == "false"
    [run] = (await http.get("/v1/runs", params={"agent_id": "broken"})).json()["data"]
    assert run["status"] == "error" and run["run_id"] in raised.value.message
    # Streamed, the error arrives as an error frame, which the SDK raises.
    stream = await oai.chat.completions.create(model="broken", messages=HI, stream=True)
    with pytest.raises(Exception, match="the model is down"):
        async for _ in stream:
            pass
    # A Response says it failed, with the run's error code in its message.
    failed = await oai.responses.create(model="broken", input="hi")
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.message.startswith("model_provider_error:")
    events = [
        event async for event in await oai.responses.create(model="broken", input="hi", stream=True)
    ]
    assert events[-1].type == "response.failed"


async def test_api_keys_are_checked_with_an_openai_error(
    database_url: str, db_engine: object
) -> None:
    settings = make_settings(database_url, api_keys=["sk-right"])
    async with serving(settings) as server:
        async with server.client(headers={"Authorization": "Bearer sk-right"}) as http:
            await http.post("/v1/agents", json={"id": "echo", "model": "test:echo"})
        wrong = AsyncOpenAI(base_url=f"{server.url}/v1", api_key="sk-wrong", max_retries=0)
        right = AsyncOpenAI(base_url=f"{server.url}/v1", api_key="sk-right", max_retries=0)
        async with wrong, right:
            for call in (
                wrong.models.list(),
                wrong.chat.completions.create(model="echo", messages=HI),
                wrong.responses.retrieve("x"),
            ):
                with pytest.raises(AuthenticationError) as raised:
                    await call
                assert raised.value.type == "authentication_error"
            answer = await right.chat.completions.create(model="echo", messages=HI)
            assert answer.choices[0].message.content == "hi"
            assert [model.id async for model in right.models.list()] == ["echo"]


async def test_models_are_the_agents(served: Any, oai: AsyncOpenAI) -> None:
    models = [model async for model in oai.models.list()]
    assert [model.id for model in models] == ["broken", "echo", "slow", "tools"]
    assert {(model.object, model.owned_by) for model in models} == {("model", "agentd")}
    echo = await oai.models.retrieve("echo")
    assert echo.id == "echo" and echo.created == models[1].created > 0
