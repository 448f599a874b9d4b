"""`TestModel`: the built-in deterministic model (`test:echo`, `test:tools`), no network.

- `echo` answers with the text of the last user message, word by word (in one
  piece when the request does not stream: a blocking run).
- `tools` calls every offered tool once, in one turn, with arguments generated
  from each tool's JSON Schema; once the conversation has tool results after
  the last user message it answers "Called N tools.".
- With an output schema, either answers with a JSON object generated from it.
- As a memory model (`purpose` "memory") either stores the user's last message
  verbatim as one memory, unless a memory with that text exists.
- As a summary model (`purpose` "summary") either answers the previous summary's
  lines and the transcript's user messages, one a line: every user message of
  the session.

Settings: `chunk_delay` (seconds slept between deltas, default 0) holds the
stream open; `fail` (true or a message) raises ModelProviderError.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from app.engine.models.base import (
    ContentDelta,
    FinishDelta,
    Message,
    ModelDelta,
    ModelProviderError,
    ModelRequest,
    ToolCallDelta,
    UsageDelta,
)

TEST_MODELS = {"echo", "tools"}


class TestModel:
    """A ModelClient whose answers follow from the request alone."""

    __test__ = False  # not a pytest test class

    async def aclose(self) -> None:
        return None

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelDelta]:
        if request.model not in TEST_MODELS:
            raise ModelProviderError(f"unknown test model {request.model!r}", status_code=404)
        fail = request.settings.get("fail")
        if fail:
            message = fail if isinstance(fail, str) else "test model failure"
            raise ModelProviderError(message, status_code=500)
        delay = float(request.settings.get("chunk_delay", 0) or 0)
        input_tokens = sum(_word_count(_text(m.get("content"))) for m in request.messages)
        if request.purpose == "memory":
            for delta in _remember(request, input_tokens):
                yield delta
            return
        if request.purpose == "summary":
            summary = _summarize(request)
            yield ContentDelta(summary)
            yield UsageDelta(input_tokens, _word_count(summary))
            yield FinishDelta("stop")
            return
        if request.model == "tools" and request.tools and not _answered(request.messages):
            turn = sum(1 for m in request.messages if m["role"] == "assistant")
            for index, tool in enumerate(request.tools):
                arguments = orjson.dumps(sample(tool.parameters)).decode()
                half = len(arguments) // 2
                call_id = f"call_{turn}_{index}"
                yield ToolCallDelta(index, id=call_id, name=tool.name, arguments=arguments[:half])
                await _pause(delay)
                yield ToolCallDelta(index, arguments=arguments[half:])
                await _pause(delay)
            yield UsageDelta(input_tokens, len(request.tools))
            yield FinishDelta("tool_calls")
            return
        answer = self._answer(request)
        chunks = re.findall(r"\S+\s*|\s+", answer)
        if not request.stream:  # asked for the whole answer: it comes in one piece
            await _pause(delay * len(chunks))
            if answer:
                yield ContentDelta(answer)
            chunks = []
        for chunk in chunks:
            await _pause(delay)
            yield ContentDelta(chunk)
        yield UsageDelta(input_tokens, _word_count(answer))
        yield FinishDelta("stop")

    def _answer(self, request: ModelRequest) -> str:
        if request.output_schema is not None:
            value = sample(request.output_schema.schema, request.output_schema.schema)
            return json.dumps(value)
        if request.model == "tools":
            return f"Called {_answered(request.messages)} tools."
        last_user = next((m for m in reversed(request.messages) if m["role"] == "user"), None)
        return _text(last_user["content"]) if last_user else ""


_MEMORY_LINE = re.compile(r"^- \[[^\]]*\] (.*)$", re.MULTILINE)


def _remember(request: ModelRequest, input_tokens: int) -> list[ModelDelta]:
    """As the memory model: the user's last message becomes one memory, unless a
    memory with that text exists (the system message lists them)."""
    system = next((m for m in request.messages if m["role"] == "system"), None)
    existing = set(_MEMORY_LINE.findall(_text(system["content"]))) if system else set()
    last_user = next((m for m in reversed(request.messages) if m["role"] == "user"), None)
    text = _text(last_user["content"]).strip() if last_user else ""
    deltas: list[ModelDelta] = []
    if text and text not in existing:
        arguments = orjson.dumps({"memory": text}).decode()
        deltas.append(ToolCallDelta(0, id="call_memory_0", name="add_memory", arguments=arguments))
    return [
        *deltas,
        UsageDelta(input_tokens, len(deltas)),
        FinishDelta("tool_calls" if deltas else "stop"),
    ]


_PREVIOUS = re.compile(r"<previous_summary>\n(.*)\n</previous_summary>", re.DOTALL)


def _summarize(request: ModelRequest) -> str:
    """As the summary model: the previous summary's lines, then each user message
    of the transcript, one a line (every user message of the session)."""
    system = _text(request.messages[0]["content"]) if request.messages else ""
    previous = _PREVIOUS.search(system)
    lines = previous.group(1).splitlines() if previous else []
    transcript = _text(request.messages[-1]["content"]) if request.messages else ""
    lines += [line[6:] for line in transcript.splitlines() if line.startswith("User: ")]
    return json.dumps({"summary": "\n".join(lines), "topics": []})


async def _pause(delay: float) -> None:
    if delay > 0:
        await asyncio.sleep(delay)


def _answered(messages: list[Message]) -> int:
    """How many tool results follow the last user message."""
    count = 0
    for message in reversed(messages):
        if message["role"] == "user":
            break
        if message["role"] == "tool":
            count += 1
    return count


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def _word_count(text: str) -> int:
    return len(text.split())


def sample(schema: Any, root: Any = None) -> Any:
    """A small deterministic value that matches `schema` (for typical schemas)."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return sample(_resolve(schema["$ref"], root), root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [
                o for o in schema[key] if not (isinstance(o, dict) and o.get("type") == "null")
            ]
            return sample((options or schema[key])[0], root)
    if schema.get("allOf"):
        return sample(schema["allOf"][0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "null"
    return _sample_type(kind, schema, root)


def _sample_type(kind: str, schema: dict[str, Any], root: Any) -> Any:
    if kind == "object":
        properties = schema.get("properties", {})
        names = schema.get("required") or list(properties)
        return {name: sample(properties.get(name, {}), root) for name in names}
    if kind == "array":
        return [sample(schema.get("items", {}), root) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "a" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        value = 0
        if "minimum" in schema or "exclusiveMinimum" in schema:
            value = max(schema.get("minimum", 0), schema.get("exclusiveMinimum", -1) + 1)
        elif "maximum" in schema or "exclusiveMaximum" in schema:
            value = min(schema.get("maximum", 0), schema.get("exclusiveMaximum", 1) - 1)
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    return None


def _resolve(ref: str, root: Any) -> Any:
    node = root
    for part in ref.removeprefix("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node
