"""A tool that records each execution (pid and idempotency key) in a file, so
tests can prove a tool ran exactly once across replicas and crashes."""

from __future__ import annotations

import os

from app.engine.tools import RunContext, tool


@tool
def count_call(label: str, ctx: RunContext) -> str:
    """Record one execution.

    Args:
        label: Anything.
    """
    path = os.environ["AGENTD_COUNT_FILE"]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()} {ctx.idempotency_key}\n")
    return f"counted {label}"


def executions(path: str) -> list[tuple[int, str]]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        rows = [line.split() for line in handle if line.strip()]
    return [(int(pid), key) for pid, key in rows]
