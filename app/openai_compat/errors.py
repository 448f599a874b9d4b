"""Errors on the OpenAI-compatible routes, in OpenAI's shape.

`{"error": {"message", "type", "param", "code"}}`, built with the SDK's own
`ErrorObject`, so the official clients raise their own exceptions from them
(`NotFoundError`, `BadRequestError`, ...). `OpenAIRoute` renders every expected
failure of its routes so: `OpenAIError`s raised by the adapter, the run
service's `AppError`s, and the request checks FastAPI and the strict JSON route
make before the endpoint runs (a body that does not validate is 400 with the
offending `param`, where problem+json would say 422).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.utils import create_model_field
from openai.types.shared import ErrorObject
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from app.errors import AgentNotFound, AppError, ValidationFailed
from app.routing import Handler, StrictJSONRoute

_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
# The run is stored whatever happened to it: a client retrying would start another.
NO_RETRY = {"x-should-retry": "false"}


class OpenAIError(Exception):
    """An expected failure, answered as OpenAI answers one."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers

    @property
    def type(self) -> str:
        if self.status >= 500:
            return "server_error"
        return _TYPES.get(self.status, "invalid_request_error")

    def body(self) -> dict[str, Any]:
        error = ErrorObject(message=self.message, type=self.type, param=self.param, code=self.code)
        return {"error": error.model_dump(exclude_none=False, exclude={"misalignment"})}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model {model!r} does not exist: GET /v1/models lists the agents.",
        code="model_not_found",
        param="model",
    )


def from_app_error(
    error: AppError, params: Mapping[str, str] | None = None, model: str | None = None
) -> OpenAIError:
    """The run service's error as OpenAI says it. A problem with the run names the
    request parameter it came from: `params` maps the run's names (`input`,
    `output_schema`) to the protocol's (`messages`, `response_format`)."""
    if isinstance(error, AgentNotFound) and model is not None:
        return model_not_found(model)
    message = error.detail or error.title
    if isinstance(error, ValidationFailed):
        problems = [str(problem.get("msg", "")) for problem in error.errors or []]
        param = _renamed(problems[0].partition(":")[0], params or {}) if problems else None
        return OpenAIError(400, "; ".join(problems) or message, code="invalid_value", param=param)
    return OpenAIError(error.status, message, code=error.code, headers=error.headers)


def _renamed(where: str, params: Mapping[str, str]) -> str:
    """`input[2].content` -> `messages[2].content` when `params` maps input to messages."""
    head = where.split("[", 1)[0].split(".", 1)[0].split(" ", 1)[0]
    return params.get(head, head) + where[len(head) :].split(" ", 1)[0]


def from_validation(errors: Sequence[Any], body: Any) -> OpenAIError:
    """A request that does not match the schema: 400 naming the first bad field.
    A union reports a mismatch for each of its members: only the deepest stays
    (`input: not a string` goes when `input[0].role` is there)."""
    invalid = next((error for error in errors if error.get("type") == "json_invalid"), None)
    if invalid is not None:
        reason = (invalid.get("ctx") or {}).get("error")
        detail = "The request body is not valid JSON" + (f": {reason}." if reason else ".")
        return OpenAIError(400, detail, code="invalid_json")
    problems = [
        (param_of(error.get("loc", ()), body), str(error.get("msg", ""))) for error in errors
    ]
    params = {param for param, _ in problems if param}
    problems = [
        (param, msg)
        for param, msg in problems
        if not param or not any(other.startswith((f"{param}.", f"{param}[")) for other in params)
    ]
    message = "; ".join(f"{where}: {msg}" if where else msg for where, msg in problems)
    first = problems[0][0] if problems else None
    return OpenAIError(400, message or "Invalid request.", code="invalid_value", param=first)


def param_of(loc: Sequence[Any], body: Any) -> str | None:
    """A validation error's location as OpenAI names a parameter (`messages[0].content`).

    Pydantic's location also holds the names of union members and discriminator
    tags (`["messages", 0, "user", "content"]`); walking the body itself tells them
    from fields: a part the body does not have is left out, unless it is the last
    (a field that is missing, or not allowed)."""
    if loc and loc[0] in ("query", "path", "header"):
        return str(loc[-1])
    parts = list(loc[1:]) if loc and loc[0] == "body" else list(loc)
    out, node = "", body
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            out, node = f"{out}[{part}]", node[part]
        elif isinstance(part, str) and isinstance(node, dict) and (part in node or last):
            out, node = f"{out}.{part}" if out else part, node.get(part)
    return out or None


class ErrorBody(BaseModel):
    """OpenAI's error answer."""

    error: ErrorObject


class OpenAIRoute(StrictJSONRoute):
    """A route whose every expected failure is answered in OpenAI's error shape
    (documented so: a 4XX answer is an `ErrorBody`, never a 422)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        responses = dict(kwargs.pop("responses", None) or {})
        responses["4XX"] = {"model": ErrorBody, "description": "An error, in OpenAI's shape."}
        super().__init__(path, endpoint, responses=responses, **kwargs)
        if 415 in self.responses:  # the strict JSON route's, in OpenAI's shape here
            self.responses = {**self.responses, 415: {**self.responses["4XX"]}}
            field = create_model_field(
                name=f"Response_415_{self.unique_id}", type_=ErrorBody, mode="serialization"
            )
            self.response_fields = {**self.response_fields, 415: field}

    def error_response(self, error: AppError, headers: Mapping[str, str]) -> Response:
        """`error` in OpenAI's shape, with `headers` (the identity middleware's
        refusals: 401 with `WWW-Authenticate`, 403)."""
        answer = from_app_error(error)
        answer.headers = {**(answer.headers or {}), **headers}
        return answer.response()

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def openai_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except OpenAIError as error:
                return error.response()
            except AppError as error:
                return from_app_error(error).response()
            except RequestValidationError as error:
                return from_validation(error.errors(), error.body).response()
            except StarletteHTTPException as error:
                detail = error.detail if isinstance(error.detail, str) else "Request failed."
                return OpenAIError(error.status_code, detail, headers=error.headers).response()

        return openai_handler
