"""Session summaries (Agno's `enable_session_summaries`): after each run one
model call rewrites the session's summary from the previous one and the run's
messages; `add_to_context` puts it in the system message of later runs."""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from pydantic import BaseModel, Field

from app.engine.models.base import Message, ModelRequest, OutputSchema


class SessionSummary(BaseModel):
    """A session's summary as stored and as `GET /v1/sessions/{id}` shows it."""

    summary: str
    topics: list[str] = Field(default_factory=list)
    updated_at: str | None = None


class SummaryStore(Protocol):
    async def save_summary(self, session_id: str, summary: SessionSummary) -> SessionSummary:
        """Store the session's summary (replacing the previous one); returns it as
        stored, with `updated_at`."""
        ...


SUMMARY_SCHEMA: dict[str, Any] = {
    "title": "SessionSummary",
    "type": "object",
    "properties": {
        "summary": {"type": "string", "description": "The summary of the conversation."},
        "topics": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["summary", "topics"],
    "additionalProperties": False,
}

SUMMARY_PROMPT = """\
Summarize the conversation between a user and an assistant: what the user said \
and asked, what was decided, what is still open. Keep every fact the user gave. \
When a previous summary is given, rewrite it with the new messages: one summary \
of the whole session. Answer with a JSON object {"summary", "topics"}."""


def _line(message: Message) -> str | None:
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    if message["role"] not in ("user", "assistant") or not isinstance(content, str):
        return None
    text = " ".join(content.split())
    return f"{message['role'].capitalize()}: {text}" if text else None


def summary_request(
    model: str,
    settings: dict[str, Any],
    previous: SessionSummary | None,
    messages: list[Message],
) -> ModelRequest:
    """The summary model's request: the previous summary and the run's messages
    (user and assistant text, one line each) as a transcript."""
    system = SUMMARY_PROMPT
    if previous is not None:
        system += f"\n<previous_summary>\n{previous.summary}\n</previous_summary>"
    lines = [line for line in map(_line, messages) if line]
    transcript = "\n".join(lines)
    return ModelRequest(
        model=model,
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": f"<conversation>\n{transcript}\n</conversation>"},
        ],
        output_schema=OutputSchema("SessionSummary", SUMMARY_SCHEMA),
        settings=settings,
        stream=False,
        purpose="summary",
    )


def parse_summary(text: str) -> SessionSummary:
    """The model's answer: the JSON object asked for, or else its text as the summary."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("summary"), str):
        topics = value.get("topics")
        topics = [str(t) for t in topics] if isinstance(topics, list) else []
        return SessionSummary(summary=value["summary"], topics=topics)
    return SessionSummary(summary=text.strip())


def summary_context(summary: SessionSummary) -> str:
    return (
        "Here is a brief summary of your previous interactions:\n"
        f"<summary_of_previous_interactions>\n{summary.summary}\n"
        "</summary_of_previous_interactions>\n"
        "Note: this information is from previous interactions and may be outdated. "
        "Prefer information from this conversation over this summary."
    )
