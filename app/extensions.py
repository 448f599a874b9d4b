"""The one stable import for users' Python code (modules named in TOOL_MODULES).

    from app.extensions import HookRejected, RunContext, guardrail, hook, tool

`tool` registers a function the agents may call, `guardrail` a check on a run's
input or output (`{"type": "python", "name": ...}` in a definition), `hook` a
pre- or post-hook (`pre_hooks` / `post_hooks`). `RunContext` is what tools and
hooks may receive about their run; a hook raises `HookRejected` to reject.
Deeper module paths may change; these names do not.
"""

from __future__ import annotations

from app.engine.guardrails import GuardrailContext, GuardrailResult, guardrail
from app.engine.hooks import HookRejected, hook
from app.engine.tools import RunContext, tool

__all__ = [
    "GuardrailContext",
    "GuardrailResult",
    "HookRejected",
    "RunContext",
    "guardrail",
    "hook",
    "tool",
]
