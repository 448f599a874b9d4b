"""Which model providers exist and their clients: `openai`, `anthropic`, `test`, plus profiles.

A profile names another endpoint, usually an OpenAI-compatible server:
`{"ollama": {"base_url": "http://localhost:11434/v1"}}` makes `ollama:llama3.2`
a valid model. Clients are created on first use and reused; secrets come from
the settings or the environment (`api_key_env`), never from agent definitions.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app.engine.models.base import ModelClient
from app.engine.models.pacing import ReadPacer

BUILTIN_PROVIDERS = frozenset({"openai", "anthropic", "test"})
# Sent to profile endpoints without a configured key (local servers need none).
PLACEHOLDER_API_KEY = "not-needed"

Secret = str | SecretStr | None


class ProviderProfile(BaseModel):
    """A named endpoint: its wire format, where it is and how to authenticate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["openai", "anthropic"] = "openai"
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable that holds the key."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Headers sent to this endpoint only. A profile gets nothing from the built-in"
            " providers' environment (OPENAI_ORG_ID, OPENAI_PROJECT_ID, OPENAI_CUSTOM_HEADERS,"
            " ANTHROPIC_CUSTOM_HEADERS, the keys and base URLs)."
        ),
    )
    timeout: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0)

    def resolved_api_key(self) -> str | None:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return None


class ModelRegistry:
    """Builds each provider's ModelClient once, on first use, and closes them all."""

    def __init__(
        self,
        *,
        openai_base_url: str | None = None,
        openai_api_key: Secret = None,
        anthropic_api_key: Secret = None,
        anthropic_base_url: str | None = None,
        profiles: Mapping[str, ProviderProfile | Mapping[str, Any]] | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        read_coalesce: float = 0.0,
    ) -> None:
        self._timeout = timeout
        self._max_retries = max_retries
        # Shared by every HTTP provider's streams (0: each read as it arrives).
        self.pacer = ReadPacer(read_coalesce)
        self._factories: dict[str, Callable[[], ModelClient]] = {
            "openai": lambda: self._openai(openai_base_url, _reveal(openai_api_key)),
            "anthropic": lambda: self._anthropic(anthropic_base_url, _reveal(anthropic_api_key)),
            "test": _test_model,
        }
        for name, value in (profiles or {}).items():
            if name == "test" or not name or ":" in name:
                raise ValueError(f"invalid model provider profile name {name!r}")
            self._factories[name] = partial(self._profile, ProviderProfile.model_validate(value))
        self._clients: dict[str, ModelClient] = {}
        # The anthropic SDK is a large import: loaded at start-up only when configured.
        self._anthropic_configured = bool(
            anthropic_api_key
            or anthropic_base_url
            or os.environ.get("ANTHROPIC_API_KEY")
            or any(
                ProviderProfile.model_validate(value).kind == "anthropic"
                for value in (profiles or {}).values()
            )
        )

    def providers(self) -> set[str]:
        return set(self._factories)

    def client(self, provider: str) -> ModelClient:
        """The provider's client, created on first use; KeyError for an unknown provider."""
        client = self._clients.get(provider)
        if client is None:
            factory = self._factories[provider]
            client = self._clients[provider] = factory()
        return client

    async def preload(self) -> None:
        """Import the HTTP providers' SDKs in a worker thread (they are slow to import).

        Await once at start-up: otherwise the first call to a provider imports
        its SDK on the event loop and stalls every other request. The anthropic
        SDK is preloaded only when anthropic is configured (a key, a base URL or
        a profile); an unconfigured deployment loads it on first use.
        """
        await asyncio.to_thread(_import_providers, self._anthropic_configured)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)

    def _openai(self, base_url: str | None, api_key: str | None, **options: Any) -> ModelClient:
        from app.engine.models.openai import OpenAIChatModel

        options = {"timeout": self._timeout, "max_retries": self._max_retries, **options}
        return OpenAIChatModel(base_url=base_url, api_key=api_key, pacer=self.pacer, **options)

    def _anthropic(self, base_url: str | None, api_key: str | None, **options: Any) -> ModelClient:
        from app.engine.models.anthropic import AnthropicModel

        options = {"timeout": self._timeout, "max_retries": self._max_retries, **options}
        return AnthropicModel(base_url=base_url, api_key=api_key, pacer=self.pacer, **options)

    def _profile(self, profile: ProviderProfile) -> ModelClient:
        # An explicit key (never the built-in provider's environment variable) for
        # another endpoint: the placeholder when none is configured.
        api_key = profile.resolved_api_key() or PLACEHOLDER_API_KEY
        limits: dict[str, Any] = {}
        if profile.timeout is not None:
            limits["timeout"] = profile.timeout
        if profile.max_retries is not None:
            limits["max_retries"] = profile.max_retries
        # Another endpoint: only the profile's own settings reach it.
        build = self._anthropic if profile.kind == "anthropic" else self._openai
        return build(
            profile.base_url, api_key, environment=False, headers=profile.headers, **limits
        )


def _reveal(secret: Secret) -> str | None:
    if isinstance(secret, SecretStr):
        return secret.get_secret_value() or None
    return secret or None


def _import_providers(anthropic: bool) -> None:
    import app.engine.models.openai

    if anthropic:
        import app.engine.models.anthropic  # noqa: F401


def _test_model() -> ModelClient:
    from app.engine.models.test import TestModel  # imported late: written alongside

    return TestModel()
