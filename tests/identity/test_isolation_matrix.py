"""Isolation over every route of the OpenAPI schema, read at test time: a route
added later is in the matrix without editing this file.

Four principals (acme's admin, acme's users u1 and u2, globex's admin) each
create what they can: an agent per tenant, a session and a run each, an API
key per tenant. Then every principal names every object outside its reach, in
every place a route takes one (path, query and body; with each boolean query
switch on too, so a retrieval's event stream is tried, and with Last-Event-ID
where a route resumes a stream), and must get exactly what it gets for an id
that does not exist; lists never show such an object; and at the end every
object is as its owner left it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from itertools import product
from typing import Any

import httpx
from fastapi import FastAPI

from tests.identity.conftest import OPERATOR_KEY, Caller, bearer, four_callers, store_key

# Paths outside /v1 that belong to no tenant (health, metrics, the console).
OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/"}

# What a parameter or body field of this name refers to.
KINDS = {
    "agent_id": "agent",
    "model": "agent",
    "handoffs": "agent",
    "run_id": "run",
    "response_id": "run",
    "previous_response_id": "run",
    "session_id": "session",
    "chat_id": "session",
    "thread_id": "session",
    "threadId": "session",  # AG-UI
    "runId": "run",
    "key_id": "api_key",
    "memory_id": "memory",
    "tenant_id": "tenant",
}
# Body fields whose name says what they name on one route only ("": nothing).
BODY_KINDS = {
    "/v1/agents/{agent_id}/chat": {"id": "session"},  # the Vercel AI SDK's chat id
    "/v1/agents": {"model": ""},  # a definition's model is a model, not an agent
    "/v1/agents/{agent_id}": {"model": ""},
}
# What a schema cannot say: values a request needs to get as far as looking at
# the objects it names (a conversation with a user's message in it).
EXAMPLE_FIELDS: dict[str, dict[str, Any]] = {
    "/v1/agents": {"model": "test:echo"},
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}]},
    "/v1/agents/{agent_id}/agui": {"messages": [{"id": "m1", "role": "user", "content": "hi"}]},
    "/v1/agents/{agent_id}/chat": {
        "trigger": "submit-message",
        "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
    },
}
# Run ids are unique across tenants (a client may choose one): a create naming a
# run id taken anywhere else is refused so, without showing anything of that run.
TAKEN_EVERYWHERE = {"run_id": (409, "run_exists"), "runId": (409, "run_exists")}
# Parameters that name no object: the value to send.
LITERALS = {"version": "1"}
MISSING = {
    "agent": "no-such-agent",
    "run": "no-such-run",
    "session": "no-such-session",
    "api_key": "no-such-key",
    "memory": "no-such-memory",
    "tenant": "no-such-tenant",
}


def reaches(caller: Caller, owner: Caller, kind: str) -> bool:
    if caller.tenant != owner.tenant:
        return False
    if kind in ("agent", "api_key", "tenant"):
        return True
    return caller.user is None or caller.user == owner.user


def outcome(response: httpx.Response) -> tuple[int, str | None]:
    """The status and the error's stable code (problem+json or the OpenAI shape)."""
    try:
        body = response.json()
    except ValueError:
        return response.status_code, None
    if not isinstance(body, dict):
        return response.status_code, None
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else body.get("code")
    return response.status_code, code


class Schema:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            schema = self.document["components"]["schemas"][name]
        return schema

    def example(self, schema: dict[str, Any]) -> Any:
        """A small value the schema accepts: required fields only."""
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                choices = [s for s in schema[key] if self.resolve(s).get("type") != "null"]
                return self.example(choices[0])
        if "enum" in schema:
            return schema["enum"][0]
        if "const" in schema:
            return schema["const"]
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            properties = schema.get("properties", {})
            return {name: self.example(properties[name]) for name in schema.get("required", [])}
        if kind == "array":
            return []
        if kind == "integer" or kind == "number":
            return max(1, schema.get("minimum", 1))
        if kind == "boolean":
            return False
        return "x"

    def body_fields(self, path: str, operation: dict[str, Any]) -> tuple[Any, dict[str, str]]:
        """An example body and its fields that name objects (name -> kind)."""
        content = operation.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return None, {}
        resolved = self.resolve(schema)
        kinds = {**KINDS, **BODY_KINDS.get(path, {})}
        fields = {name: kinds[name] for name in resolved.get("properties", {}) if kinds.get(name)}
        return {**self.example(schema), **EXAMPLE_FIELDS.get(path, {})}, fields


def baseline(body: dict[str, Any], fields: dict[str, str], caller: Caller, tried: str) -> Any:
    """`body` with its other fields that name objects naming the caller's own
    agent and tenant, and a new run and session each time (ids a create takes)."""
    sent = dict(body)
    for name, kind in fields.items():
        if name == tried or name not in body:
            continue
        if kind in ("agent", "tenant"):
            sent[name] = caller.objects[kind]
        elif kind in ("run", "session"):
            sent[name] = f"fresh-{uuid.uuid4().hex[:12]}"
    return sent


def switches(schema: Schema, operation: dict[str, Any]) -> list[dict[str, str]]:
    """No query, then each boolean query parameter on (`stream=true` makes a
    retrieval an event stream)."""
    flags = [
        parameter["name"]
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
        and schema.resolve(parameter.get("schema", {})).get("type") == "boolean"
    ]
    return [{}, *({flag: "true"} for flag in flags)]


def resumes(operation: dict[str, Any]) -> list[dict[str, str]]:
    """No header, then `Last-Event-ID` when the route takes it (a resumed stream)."""
    names = [
        parameter["name"]
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "header" and parameter["name"].lower() == "last-event-id"
    ]
    return [{}, *({name: "1"} for name in names)]


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


async def populate(http: httpx.AsyncClient, callers: list[Caller]) -> None:
    """Each tenant's agent and API key, each caller's session, run and memory."""
    admins = {caller.tenant: caller for caller in callers if caller.user is None}
    for tenant, admin in admins.items():
        agent = {"id": f"helper-{tenant}", "name": "Helper", "model": "test:echo"}
        created = await http.post("/v1/agents", json=agent, headers=admin.headers)
        assert created.status_code == 201, created.text
        key = await store_key(http, tenant, ["runs:read"])
        for caller in callers:
            if caller.tenant == tenant:
                caller.objects.update(agent=agent["id"], api_key=key["id"], tenant=tenant)
    for caller in callers:
        body = {"input": f"hello from {caller.name}", "session_id": f"s-{caller.name}"}
        run = await http.post(
            f"/v1/agents/{caller.objects['agent']}/runs", json=body, headers=caller.headers
        )
        assert run.status_code == 200, run.text
        assert run.json()["status"] == "completed"
        assert run.json()["user_id"] == caller.user
        caller.objects.update(run=run.json()["run_id"], session=run.json()["session_id"])
        # A caller without a user remembers something of a user no other caller is.
        body = {"user_id": caller.user or f"of-{caller.name}", "memory": f"{caller.name} was here"}
        memory = await http.post("/v1/memories", json=body, headers=caller.headers)
        assert memory.status_code == 201, memory.text
        caller.objects.update(memory=memory.json()["memory_id"])


async def snapshot_of(http: httpx.AsyncClient, caller: Caller) -> dict[str, Any]:
    """What the owner sees of its objects."""
    objects = caller.objects
    run = (await http.get(f"/v1/runs/{objects['run']}", headers=caller.headers)).json()
    session = (await http.get(f"/v1/sessions/{objects['session']}", headers=caller.headers)).json()
    agent = (await http.get(f"/v1/agents/{objects['agent']}", headers=caller.headers)).json()
    memory = (await http.get(f"/v1/memories/{objects['memory']}", headers=caller.headers)).json()
    for volatile in ("updated_at",):
        session.pop(volatile, None)
    # The body checks tag the owner's own memory with agent ids, missing or not.
    for volatile in ("updated_at", "agent_id"):
        memory.pop(volatile, None)
    return {"run": run, "session": session, "agent": agent, "memory": memory}


def fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda match: values[match.group(1)], template)


async def test_every_route_keeps_every_principal_to_its_own(
    keyed_app: FastAPI, http: httpx.AsyncClient
) -> None:
    document = keyed_app.openapi()
    schema = Schema(document)
    callers = await four_callers(http)
    await populate(http, callers)
    before = {caller.name: await snapshot_of(http, caller) for caller in callers}
    leaks: list[str] = []
    checked = 0

    def others(caller: Caller, kind: str) -> list[Caller]:
        return [
            owner
            for owner in callers
            if owner is not caller and kind in owner.objects and not reaches(caller, owner, kind)
        ]

    async def call(
        caller: Caller,
        method: str,
        url: str,
        body: Any,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {**caller.headers, **(headers or {})}
        return await http.request(method, url, json=body, params=params, headers=sent, timeout=30)

    routes = list(operations(document))
    for method, path, _ in routes:
        if not path.startswith("/v1"):
            assert path in OPEN_PATHS, f"{method} {path}: list it in OPEN_PATHS or under /v1"
            assert (await http.request(method, path)).status_code < 400

    # Lists (routes without path parameters that read): no object outside reach,
    # whatever the filters name.
    for method, path, operation in routes:
        if method != "GET" or "{" in path or not path.startswith("/v1"):
            continue
        filters = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        for caller in callers:
            hidden = [
                owner.objects[kind]
                for kind in ("run", "session", "api_key")
                for owner in others(caller, kind)
            ] + [owner.objects["agent"] for owner in others(caller, "agent")]
            tries: list[dict[str, str]] = [{}]
            for name in filters:
                kind = KINDS.get(name)
                tries += [{name: owner.objects[kind]} for owner in others(caller, kind or "")]
                if name == "user_id":
                    tries += [{name: owner.user} for owner in callers if owner.user]
            for params in tries:
                answer = await call(caller, method, path, None, params)
                checked += 1
                if answer.status_code == 403:
                    continue
                assert answer.status_code == 200, (path, params, answer.text)
                shown = [name for name in hidden if name in answer.text]
                if shown:
                    leaks.append(f"{caller.name}: {method} {path} {params} shows {shown}")

    # Every path parameter that names an object.
    for method, path, operation in routes:
        names = re.findall(r"\{([^}]+)\}", path)
        if not names:
            continue
        body, _ = schema.body_fields(path, operation)
        for name in names:
            assert name in KINDS or name in LITERALS, f"{path}: what does {{{name}}} name?"
        for caller in callers:
            own = {name: LITERALS.get(name) or caller.objects[KINDS[name]] for name in names}
            if method == "GET":
                mine = await call(caller, method, fill(path, own), body)
                assert mine.status_code < 300 or mine.status_code == 403, (path, mine.text)
            for name in (n for n in names if n in KINDS):
                kind = KINDS[name]
                for params, headers in product(switches(schema, operation), resumes(operation)):
                    url = fill(path, {**own, name: MISSING[kind]})
                    missing = await call(caller, method, url, body, params, headers)
                    assert missing.status_code != 422, (path, missing.text)
                    for owner in others(caller, kind):
                        url = fill(path, {**own, name: owner.objects[kind]})
                        theirs = await call(caller, method, url, body, params, headers)
                        checked += 1
                        if outcome(theirs) != outcome(missing):
                            leaks.append(
                                f"{caller.name}: {method} {url} {params} {headers} answers"
                                f" {outcome(theirs)} where a missing {kind} answers"
                                f" {outcome(missing)}"
                            )

    # Every body field that names an object (the path naming the caller's own).
    for method, path, operation in routes:
        body, fields = schema.body_fields(path, operation)
        if not fields or not path.startswith("/v1"):
            continue
        names = re.findall(r"\{([^}]+)\}", path)
        for caller in callers:
            own = {name: LITERALS.get(name) or caller.objects[KINDS[name]] for name in names}
            url = fill(path, own)
            tries = [
                (field, kind, owner, headers)
                for field, kind in fields.items()
                for owner in others(caller, kind)
                for headers in resumes(operation)
            ]
            for field, kind, owner, headers in tries:
                as_list = field == "handoffs"
                # A new missing id each time: a create may make it exist.
                absent = f"{MISSING[kind]}-{uuid.uuid4().hex[:8]}"
                missing_value: Any = [absent] if as_list else absent
                sent = {**baseline(body, fields, caller, field), field: missing_value}
                missing = await call(caller, method, url, sent, None, headers)
                value: Any = owner.objects[kind]
                sent = {
                    **baseline(body, fields, caller, field),
                    field: [value] if as_list else value,
                }
                theirs = await call(caller, method, url, sent, None, headers)
                checked += 1
                allowed = {outcome(missing), TAKEN_EVERYWHERE.get(field)}
                if theirs.status_code != 404 and outcome(theirs) not in allowed:
                    leaks.append(
                        f"{caller.name}: {method} {url} {headers} with {field}={value!r} answers"
                        f" {outcome(theirs)} where a missing one answers {outcome(missing)}"
                    )

    assert leaks == []
    assert checked > 100
    after = {caller.name: await snapshot_of(http, caller) for caller in callers}
    assert after == before
    # The operator manages every tenant's keys; each tenant's admin its own only.
    everything = await http.get("/v1/api-keys", headers=bearer(OPERATOR_KEY))
    assert {key["tenant_id"] for key in everything.json()["data"]} == {"acme", "globex"}
