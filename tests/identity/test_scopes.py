"""The route scope map: every route of the OpenAPI schema has its entry (a new
route gets one deliberately), and a route without one is closed to all but
admins rather than open."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from app.identity.scopes import ROUTE_SCOPES, ScopeMap
from app.principal import SCOPES
from tests.identity.conftest import OPERATOR_KEY, bearer, hs256


def test_every_v1_route_of_the_schema_has_a_scope(keyed_app: FastAPI) -> None:
    scopes = ScopeMap()
    missing = [
        f"{method.upper()} {path}"
        for path, operations in keyed_app.openapi()["paths"].items()
        if path.startswith("/v1")
        for method in operations
        if scopes.scope_of(method.upper(), path) is None
    ]
    assert missing == [], "give these routes an entry in app/identity/scopes.py"
    assert {scope for _, _, scope in ROUTE_SCOPES} <= SCOPES | {""}


def test_the_schema_names_each_operations_scope(keyed_app: FastAPI) -> None:
    schema = keyed_app.openapi()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    run = schema["paths"]["/v1/agents/{agent_id}/runs"]["post"]
    assert run["security"] == [{"bearer": []}]  # keys are configured: required
    assert run["x-scope"] == "runs:write"
    assert "security" not in schema["paths"]["/healthz"]["get"]


def test_without_configured_credentials_the_schema_makes_them_optional(app: FastAPI) -> None:
    run = app.openapi()["paths"]["/v1/agents/{agent_id}/runs"]["post"]
    assert run["security"] == [{"bearer": []}, {}]


async def test_a_route_without_an_entry_is_for_admins_only(
    keyed_app: FastAPI, http: httpx.AsyncClient
) -> None:
    async def unmapped() -> dict[str, bool]:
        return {"ok": True}

    keyed_app.add_api_route("/v1/unmapped", unmapped)
    member = bearer(hs256({"tenant_id": "acme", "scope": "runs:read runs:write agents:read"}))
    answer = await http.get("/v1/unmapped", headers=member)
    assert answer.status_code == 403
    assert answer.json()["code"] == "forbidden"
    assert (await http.get("/v1/unmapped", headers=bearer(OPERATOR_KEY))).json() == {"ok": True}
    admin = bearer(hs256({"tenant_id": "acme", "scope": "admin"}))
    assert (await http.get("/v1/unmapped", headers=admin)).status_code == 200
