"""Credentials reach only their endpoint: the OpenAI SDK adds OPENAI_ORG_ID,
OPENAI_PROJECT_ID and OPENAI_CUSTOM_HEADERS from the environment to every
request, whatever the base URL. The built-in `openai` provider (the
environment's endpoint) sends them; a named profile pointing at another server
sends only its own key and headers. Two fake OpenAI servers show what each
receives."""

from __future__ import annotations

import pytest

from app.engine.models.base import ContentDelta
from app.engine.models.registry import ModelRegistry
from tests.fakes import FakeAnthropicServer, FakeOpenAIServer
from tests.providers.helpers import ask, collect

ENVIRONMENT = {
    "OPENAI_ORG_ID": "org-of-the-environment",
    "OPENAI_PROJECT_ID": "proj-of-the-environment",
    "OPENAI_CUSTOM_HEADERS": "X-Gateway-Secret: s3cret\nAuthorization: Bearer gateway-token",
}


async def test_a_profile_gets_only_its_own_credentials(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-of-the-environment")
    async with FakeOpenAIServer() as elsewhere:
        registry = ModelRegistry(
            openai_base_url=openai_server.base_url,
            profiles={
                "local": {
                    "base_url": elsewhere.base_url,
                    "api_key": "sk-local",
                    "headers": {"X-Tenant": "lab"},
                },
                "keyless": {"base_url": elsewhere.base_url},
            },
        )
        try:
            for provider in ("openai", "local", "keyless"):
                deltas = await collect(registry.client(provider), ask(provider))
                assert deltas[0] == ContentDelta(provider)
        finally:
            await registry.aclose()
        local, keyless = (request.headers for request in elsewhere.requests)

    builtin = openai_server.last_request.headers
    assert builtin["openai-organization"] == "org-of-the-environment"
    assert builtin["openai-project"] == "proj-of-the-environment"
    assert builtin["x-gateway-secret"] == "s3cret"
    # OPENAI_CUSTOM_HEADERS may replace the key's Authorization: the SDK's choice, for
    # the endpoint the environment configures.
    assert builtin["authorization"] == "Bearer gateway-token"

    assert local["authorization"] == "Bearer sk-local"
    assert local["x-tenant"] == "lab"
    assert keyless["authorization"] == "Bearer not-needed"
    for headers in (local, keyless):
        leaked = {"openai-organization", "openai-project", "x-gateway-secret"} & set(headers)
        assert leaked == set()
        assert not any("environment" in value or "gateway" in value for value in headers.values())


async def test_an_anthropic_profile_gets_only_its_own_credentials(
    anthropic_server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_CUSTOM_HEADERS", "X-Gateway-Secret: s3cret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-of-the-environment")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "token-of-the-environment")
    async with FakeAnthropicServer() as elsewhere:
        registry = ModelRegistry(
            anthropic_base_url=anthropic_server.base_url,
            profiles={
                "claude-proxy": {
                    "kind": "anthropic",
                    "base_url": elsewhere.base_url,
                    "api_key": "sk-proxy",
                    "headers": {"X-Tenant": "lab"},
                }
            },
        )
        try:
            for provider in ("anthropic", "claude-proxy"):
                deltas = await collect(registry.client(provider), ask(provider))
                assert deltas[0] == ContentDelta(provider)
        finally:
            await registry.aclose()
        profile = elsewhere.last_request.headers

    builtin = anthropic_server.last_request.headers
    assert builtin["x-gateway-secret"] == "s3cret"
    assert builtin["authorization"] == "Bearer sk-ant-of-the-environment"
    assert profile["authorization"] == "Bearer sk-proxy"
    assert profile["x-tenant"] == "lab"
    assert "x-gateway-secret" not in profile
    assert not any("environment" in value for value in profile.values())
