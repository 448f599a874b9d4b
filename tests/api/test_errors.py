"""Every failure answers RFC 9457 problem+json with a stable code, and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.errors import reason_phrase
from tests.conftest import make_settings, snapshot

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["title"], str) and body["title"]
    return body


async def test_unknown_route_is_404(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")
    assert "GET /v1/nothing-here" in str(body["detail"])


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/agents")
    body = assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]
    assert "PUT /v1/agents" in str(body["detail"]) and "POST" in str(body["detail"])
    # Every method of the path, not only those of its first route.
    one = await client.put("/v1/agents/a1")
    body = assert_problem(one, 405, "method_not_allowed")
    allowed = {method.strip() for method in one.headers["allow"].split(",")}
    assert {"GET", "PATCH", "DELETE"} <= allowed and "PUT" not in allowed
    assert all(method in str(body["detail"]) for method in ("GET", "PATCH", "DELETE"))


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("application/x-www-form-urlencoded", b"id=x&name=y"),
        ("text/plain", b'{"id": "x"}'),
        ("multipart/form-data; boundary=b", b"--b--"),
    ],
)
async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, db_engine: AsyncEngine, content_type: str, content: bytes
) -> None:
    before = await snapshot(db_engine)
    response = await client.post(
        "/v1/agents", content=content, headers={"content-type": content_type}
    )
    body = assert_problem(response, 415, "unsupported_media_type")
    assert "application/json" in str(body["detail"])
    assert await snapshot(db_engine) == before


async def test_openapi_lists_415_on_routes_with_a_body(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "415" in paths["/v1/agents"]["post"]["responses"]
    assert "415" in paths["/v1/agents/{agent_id}/runs"]["post"]["responses"]
    assert "415" not in paths["/v1/agents"]["get"]["responses"]
    assert "415" not in paths["/v1/runs/{run_id}/cancel"]["post"]["responses"]


async def test_json_media_types_are_read_as_json(client: httpx.AsyncClient) -> None:
    for index, content_type in enumerate(
        ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"]
    ):
        response = await client.post(
            "/v1/agents", content=b'{"id": "j%d"}' % index, headers={"content-type": content_type}
        )
        assert response.status_code == 201, (content_type, response.text)
    # A body without a Content-Type is not guessed at.
    untyped = await client.post("/v1/agents", content=b'{"id": "untyped"}')
    assert "content-type" not in untyped.request.headers
    assert_problem(untyped, 415, "unsupported_media_type")
    assert (await client.get("/v1/agents/untyped")).status_code == 404
    # An empty body under another type (curl -X POST -d '') is told what is missing.
    empty = await client.post("/v1/agents", content=b"", headers={"content-type": "text/plain"})
    assert_problem(empty, 422, "validation_error")


async def test_malformed_json_is_400(client: httpx.AsyncClient, db_engine: AsyncEngine) -> None:
    before = await snapshot(db_engine)
    response = await client.post(
        "/v1/agents", content=b'{"id": "x",', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed_json")
    assert await snapshot(db_engine) == before


async def test_body_must_be_an_object(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/agents", json=["not", "an", "object"])
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"]


async def test_body_over_limit_is_413_by_content_length(
    database_url: str, db_engine: AsyncEngine
) -> None:
    from app.main import create_app

    app = create_app(make_settings(database_url, max_body_bytes=2048))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            before = await snapshot(db_engine)
            big = {"id": "big", "instructions": "x" * 5000}
            assert_problem(await client.post("/v1/agents", json=big), 413, "payload_too_large")
            assert await snapshot(db_engine) == before
            small = await client.post("/v1/agents", json={"id": "small"})
            assert small.status_code == 201


async def test_body_over_limit_is_413_while_streaming(
    database_url: str, db_engine: AsyncEngine
) -> None:
    """A chunked upload without Content-Length is cut off while it is read."""
    from app.main import create_app

    app = create_app(make_settings(database_url, max_body_bytes=2048))
    chunks_sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        yield b'{"id": "big", "instructions": "'
        for _ in range(100):
            chunks_sent += 1
            yield b"x" * 1000
        yield b'"}'

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            before = await snapshot(db_engine)
            response = await client.post(
                "/v1/agents", content=body(), headers={"content-type": "application/json"}
            )
            assert "content-length" not in response.request.headers
            assert_problem(response, 413, "payload_too_large")
            assert await snapshot(db_engine) == before


async def test_bad_query_is_422(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/agents?limit=0"), 422, "validation_error")
    assert_problem(await client.get("/v1/agents?cursor=%%%"), 422, "validation_error")
    assert_problem(await client.get("/v1/agents/NOT%20VALID"), 422, "validation_error")


async def test_bug_is_500_without_internals(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_api_route("/v1/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/v1/boom")
    body = assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "detail" not in body


async def test_api_keys_guard_v1_but_not_health(database_url: str, db_engine: AsyncEngine) -> None:
    from app.main import create_app

    app = create_app(make_settings(database_url, api_keys="k1,k2"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            missing = await client.get("/v1/agents")
            assert_problem(missing, 401, "unauthorized")
            assert missing.headers["www-authenticate"].startswith("Bearer")
            wrong = {"authorization": "Bearer nope"}
            assert_problem(await client.get("/v1/agents", headers=wrong), 401, "unauthorized")
            assert_problem(await client.get("/v1/tools", headers=wrong), 401, "unauthorized")
            good = await client.get("/v1/agents", headers={"authorization": "Bearer k2"})
            assert good.status_code == 200
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200
            # The key is checked before the body is read: a client without one
            # learns that, whatever it sent.
            before = await snapshot(db_engine)
            for content, content_type in [
                (b'{"id": ', "application/json"),
                (b"id=x", "application/x-www-form-urlencoded"),
                (b'{"id": "x", "model": 5}', "application/json"),
            ]:
                response = await client.post(
                    "/v1/agents", content=content, headers={"content-type": content_type}
                )
                assert_problem(response, 401, "unauthorized")
            assert await snapshot(db_engine) == before
            # The OpenAPI schema says how to authenticate.
            schema = (await client.get("/openapi.json")).json()
            schemes = schema["components"]["securitySchemes"]
            assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in schemes.values())
            assert schema["paths"]["/v1/agents"]["post"]["security"]


async def test_64_bit_integers_and_long_digit_strings_are_kept_exactly(
    client: httpx.AsyncClient,
) -> None:
    """The strict body reader refuses only what cannot be stored."""
    metadata = {
        "u64_max": 2**64 - 1,
        "i64_min": -(2**63),
        "digits": "123456789012345678901234567890",
        "float": 1.2345678901234567890123,
    }
    response = await client.post("/v1/agents", json={"id": "wide", "metadata": metadata})
    assert response.status_code == 201, response.text
    stored = (await client.get("/v1/agents/wide")).json()["metadata"]
    assert stored == metadata
    assert stored["u64_max"] == 18446744073709551615 and isinstance(stored["u64_max"], int)


async def test_malformed_json_says_why(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/agents",
        content=b'{"id":"x","max_turns":99999999999999999999999}',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 400, "malformed_json")
    assert "64-bit" in str(body["detail"])


def test_a_status_without_a_standard_phrase_is_titled_error() -> None:
    assert reason_phrase(404) == "Not Found"
    assert reason_phrase(429) == "Too Many Requests"
    assert reason_phrase(499) == "Error"  # nginx's "client closed request": no standard phrase
