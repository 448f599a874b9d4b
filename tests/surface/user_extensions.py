"""A TOOL_MODULES module as a user writes one: everything from `app.extensions`."""

from __future__ import annotations

from typing import Any

from app.extensions import HookRejected, RunContext, guardrail, hook, tool


@hook
def sign(data: Any, ctx: RunContext) -> Any:
    """Post-hook: signs text answers with the user they were written for."""
    return f"{data} (for {ctx.user_id})" if isinstance(data, str) else None


@hook(name="no_swearing")
async def reject_swearing(data: Any, ctx: RunContext) -> None:
    if isinstance(data, str) and "darn" in data:
        raise HookRejected("Mind your language.")


@guardrail
def never_trips(text: str, ctx: Any) -> bool:
    return False


@tool
def shout(text: str) -> str:
    """Say it loudly."""
    return text.upper()
