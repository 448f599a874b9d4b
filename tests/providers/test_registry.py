"""ModelRegistry: built-in providers, profiles, cached clients, keys from settings or env."""

from __future__ import annotations

import pydantic
import pytest

from app.engine.models.anthropic import AnthropicModel
from app.engine.models.base import ContentDelta
from app.engine.models.openai import OpenAIChatModel
from app.engine.models.registry import ModelRegistry, ProviderProfile
from app.engine.models.test import TestModel
from tests.fakes import FakeAnthropicServer, FakeOpenAIServer
from tests.providers.helpers import ask, collect


async def test_builtin_providers_and_profiles_are_listed() -> None:
    registry = ModelRegistry(profiles={"ollama": {"base_url": "http://localhost:11434/v1"}})

    assert registry.providers() == {"openai", "anthropic", "test", "ollama"}


async def test_an_unknown_provider_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        ModelRegistry().client("mistral")


async def test_clients_are_created_once_and_closed_together() -> None:
    registry = ModelRegistry(openai_api_key="sk-a", anthropic_api_key="sk-b")

    openai_client = registry.client("openai")
    assert isinstance(openai_client, OpenAIChatModel)
    assert registry.client("openai") is openai_client
    assert isinstance(registry.client("anthropic"), AnthropicModel)
    assert isinstance(registry.client("test"), TestModel)

    await registry.aclose()
    assert registry.client("openai") is not openai_client  # a fresh one after closing
    await registry.aclose()


async def test_the_builtin_providers_use_the_configured_endpoints_and_keys(
    openai_server: FakeOpenAIServer, anthropic_server: FakeAnthropicServer
) -> None:
    registry = ModelRegistry(
        openai_base_url=openai_server.base_url,
        openai_api_key=pydantic.SecretStr("sk-openai"),
        anthropic_base_url=anthropic_server.base_url,
        anthropic_api_key="sk-anthropic",
    )
    try:
        assert (await collect(registry.client("openai"), ask("one")))[0] == ContentDelta("one")
        assert (await collect(registry.client("anthropic"), ask("two")))[0] == ContentDelta("two")
    finally:
        await registry.aclose()

    assert openai_server.last_request.headers["authorization"] == "Bearer sk-openai"
    assert anthropic_server.last_request.headers["authorization"] == "Bearer sk-anthropic"


async def test_a_profile_is_an_openai_compatible_endpoint_needing_no_key(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")  # must not reach another server
    registry = ModelRegistry(profiles={"ollama": {"base_url": openai_server.base_url}})
    try:
        deltas = await collect(registry.client("ollama"), ask("hi", model="llama3.2"))
    finally:
        await registry.aclose()

    assert deltas[0] == ContentDelta("hi")
    request = openai_server.last_request
    assert request.body["model"] == "llama3.2"
    assert request.headers["authorization"] == "Bearer not-needed"


async def test_a_profile_reads_its_key_from_the_named_variable(
    anthropic_server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_PROXY_KEY", "sk-from-env")
    profile = ProviderProfile(
        kind="anthropic", base_url=anthropic_server.base_url, api_key_env="CLAUDE_PROXY_KEY"
    )
    registry = ModelRegistry(profiles={"claude-proxy": profile}, max_retries=0)
    try:
        client = registry.client("claude-proxy")
        assert isinstance(client, AnthropicModel)
        await collect(client, ask())
    finally:
        await registry.aclose()

    assert anthropic_server.last_request.headers["authorization"] == "Bearer sk-from-env"


def test_profiles_are_validated() -> None:
    with pytest.raises(pydantic.ValidationError):
        ModelRegistry(profiles={"x": {"kind": "gemini"}})
    with pytest.raises(pydantic.ValidationError):
        ModelRegistry(profiles={"x": {"base_url": "http://h", "apikey": "typo"}})
    with pytest.raises(ValueError, match="profile name"):
        ModelRegistry(profiles={"test": {}})
    assert "sk-secret" not in repr(ProviderProfile.model_validate({"api_key": "sk-secret"}))


def test_preload_skips_the_anthropic_sdk_unless_configured() -> None:
    """The anthropic SDK costs ~40 MB of RSS: loaded at start-up only when configured."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import asyncio, sys; from app.engine.models.registry import ModelRegistry; "
        "asyncio.run(ModelRegistry().preload()); "
        "print('anthropic' in sys.modules, 'openai' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    plain = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert plain.stdout.split() == ["False", "True"], plain.stderr
    configured = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**env, "ANTHROPIC_API_KEY": "k"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert configured.stdout.split() == ["True", "True"], configured.stderr
