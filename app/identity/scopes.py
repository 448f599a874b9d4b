"""Which scope each route needs: one declarative map, checked by the identity
middleware before routing. `AUTHENTICATED` routes check their scopes in the
service they call (the MCP endpoint serves tools of several scopes on one
path). A `/v1` path in no entry needs `admin`, so a route added without an
entry is closed rather than open; a test holds every route of the OpenAPI
schema to an entry here."""

from __future__ import annotations

import re
from collections import defaultdict

from app.principal import ADMIN

AUTHENTICATED = ""  # any principal; the service checks the scope

ROUTE_SCOPES: tuple[tuple[str, str, str], ...] = (
    # Agents
    ("GET", "/v1/agents", "agents:read"),
    ("POST", "/v1/agents", "agents:write"),
    ("GET", "/v1/agents/{agent_id}", "agents:read"),
    ("PATCH", "/v1/agents/{agent_id}", "agents:write"),
    ("DELETE", "/v1/agents/{agent_id}", "agents:write"),
    ("GET", "/v1/agents/{agent_id}/versions", "agents:read"),
    ("GET", "/v1/agents/{agent_id}/versions/{version}", "agents:read"),
    ("GET", "/v1/tools", "agents:read"),
    # Runs, native and through the frontend protocols
    ("POST", "/v1/agents/{agent_id}/runs", "runs:write"),
    ("POST", "/v1/agents/{agent_id}/agui", "runs:write"),
    ("POST", "/v1/agents/{agent_id}/chat", "runs:write"),
    ("GET", "/v1/agents/{agent_id}/chat/{chat_id}/stream", "runs:read"),
    ("GET", "/v1/runs", "runs:read"),
    ("GET", "/v1/runs/{run_id}", "runs:read"),
    ("GET", "/v1/runs/{run_id}/events", "runs:read"),
    ("POST", "/v1/runs/{run_id}/continue", "runs:write"),
    ("POST", "/v1/runs/{run_id}/cancel", "runs:write"),
    # OpenAI-compatible
    ("GET", "/v1/models", "agents:read"),
    ("GET", "/v1/models/{model}", "agents:read"),
    ("POST", "/v1/chat/completions", "runs:write"),
    ("POST", "/v1/responses", "runs:write"),
    ("GET", "/v1/responses/{response_id}", "runs:read"),
    ("GET", "/v1/responses/{response_id}/input_items", "runs:read"),
    ("POST", "/v1/responses/{response_id}/cancel", "runs:write"),
    ("DELETE", "/v1/responses/{response_id}", "runs:write"),
    # Sessions and memories
    ("GET", "/v1/sessions", "sessions:read"),
    ("GET", "/v1/sessions/{session_id}", "sessions:read"),
    ("GET", "/v1/sessions/{session_id}/messages", "sessions:read"),
    ("PATCH", "/v1/sessions/{session_id}", "sessions:write"),
    ("DELETE", "/v1/sessions/{session_id}", "sessions:write"),
    ("GET", "/v1/memories", "memories:read"),
    ("POST", "/v1/memories", "memories:write"),
    ("GET", "/v1/memories/{memory_id}", "memories:read"),
    ("PATCH", "/v1/memories/{memory_id}", "memories:write"),
    ("DELETE", "/v1/memories/{memory_id}", "memories:write"),
    # Credentials
    ("GET", "/v1/api-keys", ADMIN),
    ("POST", "/v1/api-keys", ADMIN),
    ("DELETE", "/v1/api-keys/{key_id}", ADMIN),
    # MCP: one endpoint, tools of several scopes
    ("*", "/mcp", AUTHENTICATED),
    ("*", "/mcp/", AUTHENTICATED),
)


def _pattern(template: str) -> str:
    """The template as an expression without groups of its own (`{name}`: one segment)."""
    parts = re.split(r"(\{[^}]+\})", template)
    body = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    return body + "/?$"


def _section(path: str) -> str:
    """`/v1/agents/x` -> `v1/agents`, `/mcp` -> `mcp`: rules are grouped by it."""
    parts = path.split("/", 3)
    return "/".join(parts[1:3]) if parts[1] == "v1" else parts[1]


class ScopeMap:
    """ROUTE_SCOPES indexed by method and section, the patterns of each joined in
    one expression: a request costs one match (this runs on every request)."""

    def __init__(self, rules: tuple[tuple[str, str, str], ...] = ROUTE_SCOPES) -> None:
        grouped: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for method, template, scope in rules:
            grouped[(method, _section(template))].append((_pattern(template), scope))
        self._rules: dict[tuple[str, str], tuple[re.Pattern[str], list[str]]] = {
            key: (
                re.compile("|".join(f"({pattern})" for pattern, _ in entries)),
                [scope for _, scope in entries],
            )
            for key, entries in grouped.items()
        }

    def scope_of(self, method: str, path: str) -> str | None:
        """The scope the request needs; None when no entry matches."""
        if method == "HEAD":
            method = "GET"
        section = _section(path)
        for key in ((method, section), ("*", section)):
            rules = self._rules.get(key)
            if rules is not None:
                found = rules[0].match(path)
                if found is not None and found.lastindex is not None:
                    return rules[1][found.lastindex - 1]
        return None
