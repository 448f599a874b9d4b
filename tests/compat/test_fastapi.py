"""`@direct` endpoints (app/compat/fastapi.py): called without FastAPI's request
handler when the request is well-formed, answered by FastAPI's handler (its errors,
their shapes) when not.

Fails when an upgrade of FastAPI leaves the versions its private names were
checked against, or changes them: every run would then take FastAPI's handler
(correct, but over the CPU the blocking-run bar allows)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import fastapi.routing
import httpx
import orjson
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.responses import Response

import app.compat.fastapi as compat
from app.compat.fastapi import direct
from app.errors import install_error_handlers
from app.routing import StrictJSONRoute


def test_the_installed_version_is_the_one_checked() -> None:
    assert compat.ENABLED, "check direct_handler against the new version, then widen its range"


class Order(BaseModel):
    item: str = Field(min_length=1)
    count: int = 1


Name = Annotated[str, Path(pattern=r"^[a-z]{1,8}$")]


def endpoint() -> Callable[..., Awaitable[Response]]:
    async def handle(request: Request, body: Order, name: Name) -> Response:
        return JSONResponse(
            {"name": name, "body": body.model_dump(), "path": request.url.path},
            status_code=201,
        )

    return handle


def make_app(**include: Any) -> FastAPI:
    application = FastAPI()
    install_error_handlers(application)
    router = APIRouter(route_class=StrictJSONRoute)
    router.add_api_route("/direct/{name}", direct(endpoint()), methods=["POST"])
    # The same endpoint, not marked: what FastAPI's handler answers.
    router.add_api_route("/plain/{name}", endpoint(), methods=["POST"])
    application.include_router(router, **include)
    return application


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI's handler solved dependencies for."""
    calls: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(*, request: Request, **kwargs: Any) -> Any:
        calls.append(request.url.path)
        return await original(request=request, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return calls


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def post(application: FastAPI, path: str, body: dict[str, Any]) -> httpx.Response:
    """One JSON POST to `application` (the app's exceptions raised, not answered)."""
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(path, json=body)


async def test_a_well_formed_request_skips_fastapis_handler(
    client: httpx.AsyncClient, solved: list[str]
) -> None:
    response = await client.post("/direct/abc", json={"item": "tea", "count": 2})
    assert response.status_code == 201
    assert response.json() == {
        "name": "abc",
        "body": {"item": "tea", "count": 2},
        "path": "/direct/abc",
    }
    assert solved == []
    plain = await client.post("/plain/abc", json={"item": "tea", "count": 2})
    assert plain.json() == {**response.json(), "path": "/plain/abc"}
    assert solved == ["/plain/abc"]


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("abc", b'{"item": ""}', "application/json"),  # body fails its field
        ("abc", b'{"count": "many", "item": "x"}', "application/json"),
        ("abc", b"[1, 2]", "application/json"),  # not an object
        ("abc", b"null", "application/json"),
        ("abc", b'{"item": "x"', "application/json"),  # malformed
        ("abc", b'{"item": 123456789012345678901234}', "application/json"),  # beyond 64 bits
        ("abc", b"", "application/json"),  # no body
        ("abc", b"", ""),
        ("abc", b'{"item": "x"}', "text/plain"),  # 415
        ("ABC", b'{"item": "x"}', "application/json"),  # path parameter fails its pattern
        ("toolongname", b'{"item": "x"}', "application/json"),
    ],
)
async def test_a_request_that_fails_a_check_gets_fastapis_answer(
    client: httpx.AsyncClient, solved: list[str], name: str, content: bytes, content_type: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    answer = await client.post(f"/direct/{name}", content=content, headers=headers)
    expected = await client.post(f"/plain/{name}", content=content, headers=headers)
    assert 400 <= answer.status_code < 500
    assert answer.status_code == expected.status_code
    assert answer.headers["content-type"] == expected.headers["content-type"]
    # Problems may name the path they answer: the two differ by it alone.
    assert answer.json() == orjson.loads(expected.text.replace("/plain/", "/direct/"))
    # Where FastAPI's handler solved the plain route's parameters, it solved these.
    assert solved.count(f"/direct/{name}") == solved.count(f"/plain/{name}")


async def test_while_fastapi_telemetry_records_the_handler_is_fastapis(
    client: httpx.AsyncClient, solved: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compat, "get_telemetry_data", lambda: object())
    response = await client.post("/direct/abc", json={"item": "tea"})
    assert response.status_code == 201
    assert solved == ["/direct/abc"]


def test_an_endpoint_with_dependencies_cannot_be_direct() -> None:
    async def needs(
        request: Request, body: Order, extra: Annotated[int, Depends(lambda: 1)]
    ) -> Response:
        return Response()

    async def queried(body: Order, limit: int = 10) -> Response:
        return Response()

    async def two_bodies(first: Order, second: Order) -> Response:
        return Response()

    for endpoint in (needs, queried, two_bodies):
        router = APIRouter(route_class=StrictJSONRoute)
        with pytest.raises(TypeError, match="direct endpoint takes"):
            router.add_api_route("/x/{name}", direct(endpoint), methods=["POST"])


async def test_a_direct_endpoint_must_return_a_response(solved: list[str]) -> None:
    async def returns_a_dict(body: Order) -> Any:
        return {"item": body.item}

    application = FastAPI()
    router = APIRouter(route_class=StrictJSONRoute)
    router.add_api_route("/x", direct(returns_a_dict), methods=["POST"])
    application.include_router(router)
    with pytest.raises(TypeError, match="returns a Response"):
        await post(application, "/x", {"item": "x"})


async def test_an_included_route_is_direct_under_its_prefix(solved: list[str]) -> None:
    response = await post(make_app(prefix="/v2"), "/v2/direct/abc", {"item": "tea"})
    assert response.status_code == 201
    assert response.json()["path"] == "/v2/direct/abc"
    assert solved == []


async def test_an_inclusion_that_adds_dependencies_gets_fastapis_handler(
    solved: list[str],
) -> None:
    def deny() -> None:
        raise HTTPException(status_code=403)

    application = make_app(prefix="/v2", dependencies=[Depends(deny)])
    response = await post(application, "/v2/direct/abc", {"item": "tea"})
    assert response.status_code == 403
    assert solved == ["/v2/direct/abc"]
