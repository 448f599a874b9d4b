"""The credentials in the OpenAPI schema: the bearer scheme of every `/v1`
operation (the middleware checks it; no route dependency costs a request for
documentation's sake), with the scope each operation needs. Required when
operator keys or JWTs are configured; optional while nothing is (clients on the
server's host need none until a key is stored); absent with AUTH_DISABLED."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from app.identity.scopes import AUTHENTICATED, ScopeMap
from app.principal import ADMIN

SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": (
        "An operator key (`API_KEYS`), a stored key (`agk_...`, from `POST /v1/api-keys`)"
        " or a JWT. With none configured, clients on the server's host need none."
    ),
}


def document_credentials(app: FastAPI, *, required: bool, disabled: bool) -> None:
    build = app.openapi
    scopes = ScopeMap()
    security: list[dict[str, list[str]]] = [{"bearer": []}]
    if not required:
        security.append({})  # no credentials is one way to call

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        if disabled:
            return schema
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = SCHEME
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1"):
                continue
            for method, operation in operations.items():
                needed = scopes.scope_of(method.upper(), path) or ADMIN
                operation["security"] = security
                if needed != AUTHENTICATED:
                    operation.setdefault("x-scope", needed)
                    note = f"Needs the `{needed}` scope."
                    operation["description"] = f"{operation.get('description', '')}\n\n{note}"
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
