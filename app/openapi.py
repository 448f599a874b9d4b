"""The OpenAPI schema's error answers, documented once for every route.

Routes declare the problems of their own domain with `app.errors.problems()`.
This module adds what any `/v1` route can answer whatever it does: 401 (API
keys), 503 (database unavailable, too busy, shutting down) and, on routes that
take a body, 400 `malformed_json`, 413 and 415; and it documents validation
failures (422) as the problem details they are, in place of FastAPI's
`HTTPValidationError`, which no route answers. A route that documents an error
answer in a shape of its own (a protocol with its own error body) keeps its
declarations as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI

from app.errors import PROBLEM_JSON, Problem, problems

ANY_ROUTE = problems(
    {
        401: "Missing or invalid API key (`unauthorized`), when API keys are set.",
        503: "The database is unreachable or busy, or this replica is shutting down "
        "(`database_unavailable`, `overloaded`, `shutting_down`): retry.",
    }
)
WITH_BODY = problems(
    {
        400: "The body is not JSON the service can store (`malformed_json`): invalid JSON, "
        "or an integer beyond 64 bits.",
        413: "The body is larger than `MAX_BODY_BYTES` (`payload_too_large`).",
        415: "The body is not JSON (`unsupported_media_type`).",
    }
)
INVALID = problems({422: "The request does not match the schema (`validation_error`)."})
_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"


def install_problem_docs(app: FastAPI, routers: Sequence[APIRouter] = ()) -> None:
    """Make `app.openapi()` document the problem answers (see the module), and
    list the paths of `routers` in that order (the app may match its routes in
    another), before any other path."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(in_order(build(), routers))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def in_order(schema: dict[str, Any], routers: Sequence[APIRouter]) -> dict[str, Any]:
    """`schema` with the paths of `routers` first, in their order."""
    paths: dict[str, Any] = schema.get("paths", {})
    ordered = {}
    for router in routers:
        for route in router.routes:
            path = getattr(route, "path", None)
            if path in paths:
                ordered[path] = paths[path]
    if ordered:
        schema["paths"] = {**ordered, **paths}
    return schema


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                _document(path, operation)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def _document(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    for status, response in list(responses.items()):
        if _is_fastapi_validation(response):
            responses[status] = INVALID[422]
    if any(_own_error_shape(status, response) for status, response in responses.items()):
        return
    if not path.startswith("/v1/"):
        return
    added = {**ANY_ROUTE, **(WITH_BODY if "requestBody" in operation else {})}
    for code, response in added.items():
        responses.setdefault(str(code), response)


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == _FASTAPI_VALIDATION)


def _own_error_shape(status: str, response: dict[str, Any]) -> bool:
    content: dict[str, Any] = response.get("content") or {}
    return status[:1] in "45" and bool(content) and PROBLEM_JSON not in content
