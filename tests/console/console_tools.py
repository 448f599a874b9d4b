"""A tool for the console's tests: it emits a CustomEvent and writes the session
state, so the chat shows both (named in TOOL_MODULES of the served app)."""

from __future__ import annotations

from app.engine.tools import RunContext, tool


@tool
def note_progress(step: str, ctx: RunContext) -> str:
    """Report progress to the client and remember the last step in the session.

    Args:
        step: What was done.
    """
    ctx.emit("progress", {"step": step})
    ctx.session_state["last_step"] = step
    return f"noted {step}"
