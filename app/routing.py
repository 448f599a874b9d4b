"""The route class of every `/v1` router: JSON bodies read strictly, with orjson.

Python's `json` module accepts JSON that the service could not store and would
fail on later, with a 500: integers beyond 64 bits, lone UTF-16 surrogates
(`"\\ud800"`), `NaN` and `Infinity`, nesting deep enough to exhaust the stack,
bytes that are not UTF-8. orjson, which stores the same values, refuses all of
them while parsing; its error is a `json.JSONDecodeError`, so FastAPI answers it
like any malformed body (400 `malformed_json`). It turns integers beyond 64 bits
into floats instead of refusing them, so a body with a run of 19 digits or more
is checked once more for those. This is FastAPI's documented way to change how
a request body is read (a custom `APIRoute` with its own `Request`).

The same route class checks what must hold before any body is read: the API
key, when keys are configured (a client without one learns that first, not
what is wrong with its body), and that a body sent to a route that takes JSON
is JSON, by its `Content-Type` (415, not a validation error about a form or
text it never meant; a JSON body sent as a form is how a browser's cross-site
request would arrive, which is why FastAPI too refuses it).

An endpoint marked `@direct` (the run route, the one every run goes through)
is called without FastAPI's request handler when its request is well-formed:
FastAPI's handler reads the body, solves the dependencies and validates the
parameters through generic machinery, measured at about 6% of a streamed run's
CPU at 1,024 streams (0.3 ms a request on the benchmark's host). A direct
endpoint takes the request, path parameters and one JSON body, and no
dependencies (checked when the route is built); its parameters are validated
by FastAPI's own fields, the same calls FastAPI makes. Any request that fails a
check, any request while FastAPI's telemetry is recording, and a copy of the
route that an `include_router` gave dependencies take FastAPI's handler, so
errors, their shapes and spans are FastAPI's own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import fastapi.routing
import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from starlette.responses import Response as StarletteResponse

from app.errors import UnsupportedMediaType

# What orjson stores: signed and unsigned 64-bit integers.
INT_MIN, INT_MAX = -(2**63), 2**64 - 1
_LONG_DIGITS = re.compile(rb"\d{19}")


def loads_storable(body: bytes) -> Any:
    """The JSON value of `body`; `json.JSONDecodeError` for JSON the service cannot store."""
    value = orjson.loads(body)
    if _LONG_DIGITS.search(body):
        json.loads(body, parse_int=_storable_int)  # orjson has made floats of big integers
    return value


def _storable_int(text: str) -> int:
    number = int(text)
    if not INT_MIN <= number <= INT_MAX:
        shown = text if len(text) <= 30 else f"{text[:27]}..."
        raise json.JSONDecodeError(f"integer out of the 64-bit range ({shown})", text, 0)
    return number


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_storable(await self.body())
        return self._json


def is_json_media_type(content_type: str) -> bool:
    """`application/json` or `application/<anything>+json`, parameters aside."""
    media_type = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


Authorize = Callable[[Request], None]
Handler = Callable[[Request], Coroutine[Any, Any, Response]]
DirectHandler = Callable[[Request], Awaitable[StarletteResponse | None]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[StarletteResponse]])

_DIRECT = "__direct_endpoint__"


def direct(endpoint: Endpoint) -> Endpoint:
    """Call `endpoint` straight from the route when its request is well-formed
    (see the module's docstring). It must return a `Response`."""
    setattr(endpoint, _DIRECT, True)
    return endpoint


def built_route(route: APIRoute) -> Any:
    """What FastAPI builds `route`'s handler for: the route, or the copy of it in an
    `include_router` (its prefix, and the dependencies the inclusion adds)."""
    context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = context_var.get() if context_var is not None else None
    if context is not None and getattr(context, "original_route", None) is route:
        return context
    return route


def direct_handler(route: APIRoute) -> DirectHandler | None:
    """The endpoint of `route` called with its request, path parameters and
    body validated by the route's own fields; the handler answers `None` for a
    request FastAPI must answer (a field did not validate, the body is not a
    JSON value). `None` for a copy of the route that an `include_router` gave
    dependencies: FastAPI's handler solves them."""
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

    async def handle(request: Request) -> StarletteResponse | None:
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
        if not isinstance(response, StarletteResponse):
            raise TypeError(f"{built.path}: a direct endpoint returns a Response")
        return response

    return handle


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None
        fast = direct_handler(self) if getattr(self.endpoint, _DIRECT, False) else None

        async def strict_handler(request: Request) -> Response:
            strict = StrictJSONRequest(request.scope, request.receive)
            authorize: Authorize | None = getattr(request.app.state, "authorize", None)
            if authorize is not None:
                authorize(strict)
            if takes_body:
                content_type = strict.headers.get("content-type", "")
                if not is_json_media_type(content_type) and await strict.body():
                    got = f"got {content_type[:100]!r}" if content_type else "got none"
                    raise UnsupportedMediaType(
                        f"The body must be JSON: send `Content-Type: application/json` ({got})."
                    )
            if fast is not None and get_telemetry_data() is None:
                response = await fast(strict)
                if response is not None:
                    return response
            return await handler(strict)

        return strict_handler
