"""FastAPI: the run routes called without FastAPI's generic request handler.

FastAPI's handler reads the body, solves the dependencies and validates the
parameters through generic machinery, a sizeable part of a blocking run's CPU
(bench/RESULTS.md). An endpoint marked `@direct` (the routes every run goes
through) is called straight from its route when the request is well-formed:
it takes the request, path parameters and one JSON body and no dependencies
(checked when the route is built), and its parameters are validated by
FastAPI's own fields, the same calls FastAPI makes. Any request that fails a
check, any request while FastAPI's telemetry is recording, and a copy of the
route that an `include_router` gave dependencies take FastAPI's handler, so
errors, their shapes and spans are FastAPI's own.

Private names: `fastapi.routing._effective_route_context_var` (the copy of a
route that `include_router` builds) and `APIRoute._embed_body_fields`. Outside
the versions below `direct_handler` answers None and every request takes
FastAPI's handler.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import fastapi.routing
from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from starlette.responses import Response

from app.compat import supported

# The versions these names were checked against (tests/compat/test_fastapi.py).
FASTAPI = ("0.165", "0.166")

ENABLED = supported(
    "fastapi", *FASTAPI, what="_effective_route_context_var and APIRoute._embed_body_fields"
)

DirectHandler = Callable[[Request], Awaitable[Response | None]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])

_DIRECT = "__direct_endpoint__"


def direct(endpoint: Endpoint) -> Endpoint:
    """Call `endpoint` straight from its route when its request is well-formed
    (see the module's docstring). It must return a `Response`."""
    setattr(endpoint, _DIRECT, True)
    return endpoint


def is_direct(endpoint: Callable[..., Any]) -> bool:
    return ENABLED and getattr(endpoint, _DIRECT, False)


def recording() -> bool:
    """Whether FastAPI's telemetry records this request (then its handler answers)."""
    return get_telemetry_data() is not None


def built_route(route: APIRoute) -> Any:
    """What FastAPI builds `route`'s handler for: the route, or the copy of it in an
    `include_router` (its prefix, and the dependencies the inclusion adds)."""
    context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = context_var.get() if context_var is not None else None
    if context is not None and getattr(context, "original_route", None) is route:
        return context
    return route


def direct_handler(route: APIRoute) -> DirectHandler | None:
    """The endpoint of `route` called with its request, path parameters and body
    validated by the route's own fields; the handler answers `None` for a request
    FastAPI must answer (a field did not validate, the body is not a JSON value).
    `None` for a copy of the route that an `include_router` gave dependencies:
    FastAPI's handler solves them."""
    built = built_route(route)
    dependant, body_field = built.dependant, built.body_field
    if (
        dependant.dependencies
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or len(dependant.body_params) != 1
        or getattr(built, "_embed_body_fields", True)
        or body_field is None
        or any(
            name is not None
            for name in (
                dependant.http_connection_param_name,
                dependant.websocket_param_name,
                dependant.response_param_name,
                dependant.background_tasks_param_name,
                dependant.security_scopes_param_name,
            )
        )
    ):
        if built is not route and not route.dependant.dependencies:
            return None
        raise TypeError(
            f"{built.path}: a direct endpoint takes the request, path parameters and one "
            "JSON body, and no dependencies"
        )
    endpoint, request_name = dependant.call, dependant.request_param_name
    path_fields = [(field, field.alias, ("path", field.alias)) for field in dependant.path_params]
    body_loc = ("body",)

    async def handle(request: Request) -> Response | None:
        if not await request.body():
            return None
        try:
            data = await request.json()
        except json.JSONDecodeError:
            return None
        values: dict[str, Any] = {}
        path_params = request.path_params
        for path_field, alias, loc in path_fields:
            if alias not in path_params:
                return None
            value, errors = path_field.validate(path_params[alias], values, loc=loc)
            if errors:
                return None
            values[path_field.name] = value
        body, errors = body_field.validate(data, values, loc=body_loc)
        if errors:
            return None
        values[body_field.name] = body
        if request_name is not None:
            values[request_name] = request
        response = await endpoint(**values)
        if not isinstance(response, Response):
            raise TypeError(f"{built.path}: a direct endpoint returns a Response")
        return response

    return handle
