"""What the next agent sees of the conversation at a handoff (the OpenAI Agents
SDK's `handoff_input_filter`): `none` (everything), `remove_tools` (tool calls and
results dropped, the handoff's own included, as the SDK's `remove_all_tools`),
`last_user_message` (only that). The filtered conversation is the run's from
then on, as in the SDK."""

from __future__ import annotations

from typing import Literal

from app.engine.models.base import Message
from app.engine.state import RunState

HandoffInputFilter = Literal["none", "remove_tools", "last_user_message"]


def _without_tools(messages: list[Message]) -> list[Message]:
    kept: list[Message] = []
    for message in messages:
        if message["role"] == "tool":
            continue
        if message["role"] == "assistant" and message.get("tool_calls"):
            if not message.get("content"):
                continue
            message = {k: v for k, v in message.items() if k != "tool_calls"}
        kept.append(message)
    return kept


def filter_for_handoff(state: RunState, kind: HandoffInputFilter) -> None:
    """Apply `kind` to the state's messages, keeping the history/run boundary."""
    if kind == "none":
        return
    history, new = state.messages[: state.history_length], state.new_messages()
    if kind == "remove_tools":
        history, new = _without_tools(history), _without_tools(new)
    else:
        last = next((m for m in reversed(state.messages) if m["role"] == "user"), None)
        in_history = last is not None and not any(m is last for m in new)
        history = [last] if in_history and last is not None else []
        new = [last] if not in_history and last is not None else []
    state.messages = history + new
    state.history_length = len(history)
