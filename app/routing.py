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

The same route class checks what must hold before any body is read (after the
identity middleware has checked the credentials): that a body sent to a route
that takes JSON is JSON, by its `Content-Type` (415, not a validation error about a form or
text it never meant; a JSON body sent as a form is how a browser's cross-site
request would arrive, which is why FastAPI too refuses it).

Endpoints marked `@direct` (app/compat/fastapi.py: the routes that start runs)
are called without FastAPI's generic request handler when the request is
well-formed; anything else takes FastAPI's handler, after the checks above.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from app.compat.fastapi import direct_handler, is_direct, recording
from app.errors import UnsupportedMediaType

# What orjson stores: signed and unsigned 64-bit integers.
INT_MIN, INT_MAX = -(2**63), 2**64 - 1
_LONG_DIGITS = re.compile(rb"\d{19}")


def loads_storable(body: bytes) -> Any:
    """The JSON value of `body`; `json.JSONDecodeError` for JSON the service cannot store."""
    value = orjson.loads(body)
    if _LONG_DIGITS.search(body):
        json.loads(body, parse_int=_storable_int)  # orjson has made floats of big integers
    if b"\\u0000" in body and _has_nul(value):
        # PostgreSQL's text and JSONB cannot hold the NUL character.
        raise json.JSONDecodeError("the NUL character (\\u0000) in a string", "", 0)
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _storable_int(text: str) -> int:
    number = int(text)
    if not INT_MIN <= number <= INT_MAX:
        shown = text if len(text) <= 30 else f"{text[:27]}..."
        raise json.JSONDecodeError(f"integer out of the 64-bit range ({shown})", text, 0)
    return number


class StrictJSONRequest(Request):
    _strict_json: Any

    async def json(self) -> Any:
        if not hasattr(self, "_strict_json"):
            self._strict_json = loads_storable(await self.body())
        return self._strict_json


def is_json_media_type(content_type: str) -> bool:
    """`application/json` or `application/<anything>+json`, parameters aside."""
    media_type = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None
        fast = direct_handler(self) if is_direct(self.endpoint) else None

        async def strict_handler(request: Request) -> Response:
            strict = StrictJSONRequest(request.scope, request.receive)
            if takes_body:
                content_type = strict.headers.get("content-type", "")
                if not is_json_media_type(content_type) and await strict.body():
                    got = f"got {content_type[:100]!r}" if content_type else "got none"
                    raise UnsupportedMediaType(
                        f"The body must be JSON: send `Content-Type: application/json` ({got})."
                    )
            if fast is not None and not recording():
                response = await fast(strict)
                if response is not None:
                    return response
            return await handler(strict)

        return strict_handler
