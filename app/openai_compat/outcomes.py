"""What the end of a run means to an OpenAI client, for both APIs.

A completed run's content is the answer's text (structured output as its JSON).
A run paused for client tools ends the answer with those calls; paused for a
person (a confirmation, user input) it has no OpenAI form, and points to the
native continue route. A failed or cancelled run is an error the client should
not retry blindly: the run is stored, and a retry would start another.
"""

from __future__ import annotations

from typing import Any

from app.engine import jsontext
from app.openai_compat.errors import NO_RETRY, OpenAIError

# Run errors caused by what the client sent, not by the service or the model.
_CLIENT_FAULTS = frozenset(
    {
        "input_guardrail_tripwire_triggered",
        "output_guardrail_tripwire_triggered",
        "hook_rejected",
        "user_error",
    }
)


def text_of(content: Any) -> str:
    """An answer as text: structured output as its JSON."""
    if content is None:
        return ""
    return content if isinstance(content, str) else jsontext.dumps(content).decode()


def arguments_of(tool_args: Any) -> str:
    return jsontext.dumps(tool_args).decode()


def client_calls(requirements: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The calls a paused run waits on when they are all the client's to execute
    (None when a person must decide something)."""
    if all(requirement.get("kind") == "external_execution" for requirement in requirements):
        return requirements
    return None


def run_failed(run_id: str, status: str, error: dict[str, Any] | None) -> OpenAIError:
    """A run that ended in error or was cancelled, as an error answer."""
    if status == "cancelled":
        return OpenAIError(
            409, f"Run {run_id!r} was cancelled.", code="run_cancelled", headers=NO_RETRY
        )
    code = str((error or {}).get("code") or "internal_error")
    message = str((error or {}).get("message") or "The run failed.")
    return OpenAIError(
        400 if code in _CLIENT_FAULTS else 500,
        f"{message} (run {run_id})",
        code=code,
        headers=NO_RETRY,
    )


def paused_for_a_person(run_id: str) -> OpenAIError:
    return OpenAIError(
        409,
        f"Run {run_id!r} paused for a person's decision: answer it with "
        f"POST /v1/runs/{run_id}/continue.",
        code="run_paused",
        headers=NO_RETRY,
    )
