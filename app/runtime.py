"""What the service builds once at start-up from the settings: model,
tool and guardrail registries, and the catalog definitions are checked against."""

from __future__ import annotations

from dataclasses import dataclass

from app.agents.service import Catalog
from app.config import Settings

PROVIDERS = frozenset({"openai", "anthropic", "test"})


@dataclass
class Runtime:
    catalog: Catalog

    async def aclose(self) -> None:
        return None


def build_runtime(settings: Settings) -> Runtime:
    catalog = Catalog(
        providers=PROVIDERS | frozenset(settings.model_providers),
        tools=frozenset({"current_time", "calculator"}),
        test_models=frozenset({"echo", "tools"}),
    )
    return Runtime(catalog=catalog)
