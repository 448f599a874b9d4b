"""What the service builds once from its settings: model, tool, guardrail and
hook registries, the MCP servers' pool, and the catalog agent definitions are
checked against."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from app.agents.service import Catalog
from app.config import BadSettings, Settings
from app.engine.guardrails import GuardrailRegistry, default_guardrails
from app.engine.hooks import HookRegistry, default_hooks
from app.engine.models.registry import ModelRegistry
from app.engine.models.test import TEST_MODELS
from app.engine.tools import ToolRegistry, default_registry
from app.mcp.pool import McpPool


@dataclass
class Runtime:
    models: ModelRegistry
    tools: ToolRegistry
    guardrails: GuardrailRegistry
    hooks: HookRegistry
    mcp: McpPool

    @property
    def catalog(self) -> Catalog:
        return Catalog(
            providers=frozenset(self.models.providers()),
            tools=frozenset(tool.name for tool in self.tools.list()),
            guardrails=frozenset(g.name for g in self.guardrails.list()),
            hooks=frozenset(h.name for h in self.hooks.list()),
            test_models=frozenset(TEST_MODELS),
            remote=self.mcp,
        )

    async def aclose(self) -> None:
        await self.models.aclose()
        await self.mcp.aclose()


def build_runtime(settings: Settings) -> Runtime:
    """Registries from the settings; a TOOL_MODULES entry that cannot be imported
    stops start-up with one line."""
    tools, guardrails, hooks = default_registry, default_guardrails, default_hooks
    for module in settings.tool_modules:
        try:
            tools.load_modules([module])
            guardrails.load_modules([module])
            hooks.load_modules([module])
        except Exception as exc:
            print(
                f"agentd: invalid settings: TOOL_MODULES: cannot import {module!r}: {exc}",
                file=sys.stderr,
            )
            raise BadSettings(2) from None
    models = ModelRegistry(
        openai_base_url=settings.openai_base_url,
        openai_api_key=settings.openai_api_key,
        anthropic_api_key=settings.anthropic_api_key,
        anthropic_base_url=settings.anthropic_base_url,
        profiles=settings.model_providers,
        timeout=settings.model_timeout,
        max_retries=settings.model_max_retries,
        read_coalesce=settings.model_read_coalesce_seconds,
    )
    mcp = McpPool(settings.mcp_servers)
    return Runtime(models=models, tools=tools, guardrails=guardrails, hooks=hooks, mcp=mcp)
