"""Canonical (Chat Completions shaped) messages as Anthropic Messages API input.

System messages become `system`; assistant `tool_calls` become `tool_use`
blocks; `tool` messages become `tool_result` blocks in a user turn; consecutive
turns of one role merge (so parallel tool results share one user turn); image
parts become image blocks, base64 from `data:` URLs, a URL source otherwise;
file parts become document blocks (PDFs, and text files as text).
Reasoning from earlier turns is not sent back: Anthropic only accepts thinking
blocks with the signature it issued, which the canonical shape does not keep.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from app.engine import jsontext
from app.engine.models.base import Message, OutputSchema
from app.engine.models.http import safe_name

Block = dict[str, Any]


def translate(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """The `system` text and the `messages` list of a Messages API request."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            if text := text_of(message.get("content")):
                system.append(text)
            continue
        if role == "assistant":
            blocks = assistant_blocks(message)
        elif role == "tool":
            role, blocks = "user", [tool_result(message)]
        else:
            role, blocks = "user", content_blocks(message.get("content"))
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # tool results must open their user turn
            turn["content"].sort(key=lambda block: block.get("type") != "tool_result")
    return "\n\n".join(system), turns


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def content_blocks(content: Any) -> list[Block]:
    """User content (a string or text/image parts) as text and image blocks."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    blocks: list[Block] = []
    for part in content if isinstance(content, list) else ():
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and str(part.get("text", "")).strip():
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url:
                blocks.append(image_block(url))
        elif kind == "file" and isinstance(part.get("file"), dict):
            blocks.append(document_block(part["file"]))
    return blocks


def document_block(file: dict[str, Any]) -> Block:
    """A document block: a PDF (base64 or by URL) or a text file (its text)."""
    block: Block = {"type": "document"}
    if "url" in file:
        block["source"] = {"type": "url", "url": file["url"]}
    else:
        header, _, data = str(file.get("file_data", "")).partition(",")
        media_type = header[5:].partition(";")[0]
        if media_type.startswith("text/"):
            text = base64.b64decode(data).decode("utf-8", errors="replace")
            block["source"] = {"type": "text", "media_type": "text/plain", "data": text}
        else:
            block["source"] = {"type": "base64", "media_type": media_type, "data": data}
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


def image_block(url: str) -> Block:
    """An image block: base64 from a `data:<type>;base64,` URL, else a URL source."""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type, _, encoding = header[5:].partition(";")
        if encoding == "base64":
            source = {"type": "base64", "media_type": media_type or "image/png", "data": data}
            return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": url}}


def assistant_blocks(message: Message) -> list[Block]:
    text = text_of(message.get("content"))
    blocks: list[Block] = [{"type": "text", "text": text}] if text.strip() else []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": arguments_object(function.get("arguments")),
            }
        )
    return blocks


def arguments_object(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments as the object `tool_use.input` must be ({} if not JSON)."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def tool_result(message: Message) -> Block:
    content = message.get("content")
    if isinstance(content, list):
        content = content_blocks(content)
    elif not isinstance(content, str):
        content = "" if content is None else jsontext.dumps(content).decode()
    return {"type": "tool_result", "tool_use_id": message.get("tool_call_id"), "content": content}


def output_tool(schema: OutputSchema, taken: set[str]) -> dict[str, Any]:
    """The tool whose input is the structured answer."""
    name = safe_name(schema.name)
    while name in taken:
        name = f"{name[:63]}_"
    description = schema.schema.get("description") or ""
    return {
        "name": name,
        "description": f"Give your final answer by calling this tool. {description}".strip(),
        "input_schema": schema.schema,
    }


def tool_choice(
    requested: Any, *, output_name: str | None, other_tools: bool, thinking: bool, parallel: Any
) -> dict[str, Any] | None:
    """`tool_choice` from a Chat Completions style setting and the output tool.

    With an output schema the output tool is forced; with other tools too, any
    tool is (the output tool ends the run, the others are called). Extended
    thinking allows only `auto`, so then the model is asked, not forced.
    """
    choice = _anthropic_choice(requested)
    if output_name is not None and choice is None:
        if thinking:
            choice = {"type": "auto"}
        elif other_tools:
            choice = {"type": "any"}
        else:
            choice = {"type": "tool", "name": output_name}
    if parallel is False:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    return choice


def _anthropic_choice(requested: Any) -> dict[str, Any] | None:
    if requested is None:
        return None
    if isinstance(requested, str):
        return {"type": {"required": "any"}.get(requested, requested)}
    if isinstance(requested, dict) and requested.get("type") == "function":
        return {"type": "tool", "name": (requested.get("function") or {}).get("name")}
    return dict(requested) if isinstance(requested, dict) else None
