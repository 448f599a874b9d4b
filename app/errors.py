"""One error hierarchy, rendered once as RFC 9457 problem details.

Routes raise `AppError` subclasses; the handlers here turn them, FastAPI's
validation errors and Starlette's HTTP errors into `application/problem+json`
with a stable `code`. Anything else is a bug: logged, answered as a bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar, Protocol, runtime_checkable

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("agentd")

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details, as every error answer carries them."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str
    errors: list[dict[str, Any]] | None = None


class AppError(Exception):
    """An expected failure with its HTTP status and stable code."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    headers: ClassVar[Mapping[str, str] | None] = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.extra = extra or {}

    def to_problem(self) -> dict[str, Any]:
        body = Problem(
            title=self.title,
            status=self.status,
            detail=self.detail,
            code=self.code,
            errors=self.errors,
        ).model_dump(exclude_none=True)
        # Extension members add to the standard ones, never replace them (RFC 9457).
        body.update((key, value) for key, value in self.extra.items() if key not in body)
        return body


class BadRequest(AppError):
    status, code, title = 400, "bad_request", "Bad request"


class MalformedJSON(AppError):
    status, code, title = 400, "malformed_json", "Malformed JSON body"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Missing or invalid API key"
    headers = {"WWW-Authenticate": 'Bearer realm="agentd"'}


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class AgentNotFound(NotFound):
    code, title = "agent_not_found", "Agent not found"


class RunNotFound(NotFound):
    code, title = "run_not_found", "Run not found"


class SessionNotFound(NotFound):
    code, title = "session_not_found", "Session not found"


class ApiKeyNotFound(NotFound):
    code, title = "api_key_not_found", "API key not found"


class MemoryNotFound(NotFound):
    code, title = "memory_not_found", "Memory not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class AgentExists(Conflict):
    code, title = "agent_exists", "An agent with this id already exists"


class SessionBusy(Conflict):
    code, title = "session_busy", "The session already has an active run"


class RunNotPaused(Conflict):
    code, title = "run_not_paused", "The run is not paused"


class RunNotActive(Conflict):
    code, title = "run_not_active", "The run is not active"


class RunExists(Conflict):
    code, title = "run_exists", "A run with this id exists"


class IdempotencyKeyReused(AppError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key used for another request"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class ValidationFailed(AppError):
    status, code, title = 422, "validation_error", "Invalid request"


class UnsupportedMedia(ValidationFailed):
    """The run's model cannot take some of its media (each one in `errors`)."""

    code, title = "unsupported_media", "The model cannot take this media"


class McpServerUnreachable(ValidationFailed):
    """A definition names an MCP server whose tools could not be listed: checked again
    once the server answers (`server` names it; `errors` has one entry per server)."""

    code, title = "mcp_server_unreachable", "An MCP server the definition names is unreachable"


class TooManyActiveRuns(AppError):
    status, code, title = 429, "too_many_active_runs", "Too many active runs"
    headers = {"Retry-After": "1"}


class ServiceUnavailable(AppError):
    status, code, title = 503, "not_ready", "Service not ready"


class Overloaded(AppError):
    status, code, title = 503, "overloaded", "Too busy: try again shortly"


class ShuttingDown(AppError):
    """A blocking request whose replica stops before its run ended: the run is
    handed to another replica, and the client re-attaches (the problem carries
    `run_id`) or retries."""

    status, code, title = 503, "shutting_down", "This replica is shutting down: retry"
    headers = {"Retry-After": "1"}


class DatabaseUnavailable(AppError):
    status, code, title = 503, "database_unavailable", "The database cannot be reached"


def problems(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problem answers a route can give: the `Problem`
    schema under `application/problem+json` only (a `model` would add it under
    `application/json` too). `app.openapi` puts `Problem` in the components."""
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        status: {"content": content, "description": description}
        for status, description in descriptions.items()
    }


def problem_response(
    body: dict[str, Any], status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


@runtime_checkable
class ShapesErrors(Protocol):
    """A route whose protocol has its own error shape (the OpenAI-compatible
    routes): what is refused before routing (credentials, scopes) is answered
    in that shape on it, not as problem+json."""

    def error_response(self, error: AppError, headers: Mapping[str, str]) -> Response: ...


def _pydantic_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors without echoing inputs back (they may be large or secret)."""
    cleaned = []
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part != "body"]
        cleaned.append(
            {"loc": loc, "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
        )
    return cleaned


async def _app_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return problem_response(exc.to_problem(), exc.status, exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    invalid = next((error for error in errors if error.get("type") == "json_invalid"), None)
    if invalid is not None:
        reason = (invalid.get("ctx") or {}).get("error")
        detail = "The request body is not valid JSON" + (f": {reason}." if reason else ".")
        return problem_response(MalformedJSON(detail).to_problem(), 400)
    error = ValidationFailed(
        "The request does not match the schema.", errors=_pydantic_errors(errors)
    )
    return problem_response(error.to_problem(), 422)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def reason_phrase(status: int) -> str:
    """The standard reason phrase of `status`, or "Error" for a status it has none of."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    title = reason_phrase(status)
    code = _HTTP_CODES.get(status, title.lower().replace(" ", "_").replace("-", "_"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    headers = dict(exc.headers or {})
    target = f"{request.method} {request.url.path}"[:300]
    if status == 405 and detail is None:
        # Starlette names the methods of the first route on the path only.
        allowed = _allowed_methods(request)
        if allowed:
            headers = {key: value for key, value in headers.items() if key.lower() != "allow"}
            headers["Allow"] = ", ".join(allowed)
            detail = f"{target} is not allowed; this path accepts {headers['Allow']}."
    elif status == 404 and detail is None:
        detail = f"No route matches {target}; /docs lists the routes."
    body = Problem(title=title, status=status, detail=detail, code=code)
    return problem_response(body.model_dump(exclude_none=True), status, headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route fully matches on this request's path."""
    routes = request.app.router.routes
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in routes):
            allowed.append(method)
    return allowed


def database_problem(exc: BaseException, target: str) -> AppError | None:
    """The answer to a database that is out of connections or unreachable (the
    client may retry), or None for any other exception. `target` names the
    request in the log."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        log.warning("%s: database pool exhausted", target)
        return Overloaded("No database connection was free in time.")
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        log.warning("%s: database connection lost", target)
        return DatabaseUnavailable("The database connection was lost.")
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        log.warning("%s: database unavailable: %s", target, exc)
        return DatabaseUnavailable()
    # Connection refused and the like (asyncpg raises OSError when the server is down).
    if isinstance(exc, ConnectionError | TimeoutError):
        log.warning("%s: %s", target, type(exc).__name__)
        return DatabaseUnavailable()
    return None


async def _database_error(request: Request, exc: Exception) -> Response:
    error = database_problem(exc, f"{request.method} {request.url.path}")
    if error is None:
        return await _unhandled(request, exc)
    return problem_response(error.to_problem(), error.status, {"Retry-After": "1"})


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = Problem(title="Internal server error", status=500, code="internal_error")
    return problem_response(body.model_dump(exclude_none=True), 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sqlalchemy.exc.SQLAlchemyError, _database_error)
    app.add_exception_handler(OSError, _database_error)
    app.add_exception_handler(Exception, _unhandled)


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` while reading; FastAPI re-raises HTTP errors as they are."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes.")


class BodyLimitMiddleware:
    """Rejects bodies over `max_bytes` with 413: by Content-Length before the app
    runs, and by counting bytes while the body is read (chunked uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
                else:
                    if length > self.max_bytes:
                        await self._reject(scope, receive, send)
                        return
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked and (length is not None or scope.get("http_version") in ("1.0", "1.1")):
            # HTTP/1 frames the body by Content-Length (or sends none without it or
            # chunking): it cannot outgrow what was checked, so nothing is counted
            # and `receive`/`send` are not wrapped (a streamed answer sends often).
            await self.app(scope, receive, send)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(f"The request body exceeds {self.max_bytes} bytes.")
        response = problem_response(error.to_problem(), 413, {"connection": "close"})
        await response(scope, receive, send)
