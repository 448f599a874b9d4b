"""Media inputs of a run (Agno's images, audio, video, files): checked, turned into
content parts of the last user message, and matched against what the model takes.

Each item is `{"url"}` or `{"content": base64, "mime_type", "filename"?}`. The
canonical parts follow Chat Completions: `image_url`, `input_audio`
(`{"data", "format"}`, or `{"url"}`), `file` (`{"file_data": data URL, "filename"}`,
or `{"url", "filename"}`) and `video_url`. Providers declare the kinds they take
(`media` on the client: see `KINDS`); a run whose model cannot take one is
refused before it is stored, with every such item named.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from app.engine.errors import InputError

# What one item may weigh (decoded) and how many a run may carry, all kinds together.
MAX_MEDIA_BYTES = 20 * 1024 * 1024
MAX_MEDIA_ITEMS = 20

# The kinds of parts a model may take. A client's `media` lists those it takes;
# a client that declares nothing takes them all (the test model).
KINDS = frozenset(
    {"image", "audio", "audio_url", "video", "file_pdf", "file_pdf_url", "file_text", "file"}
)
AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}
MEDIA_FIELDS = ("images", "audio", "video", "files")


class UnsupportedMediaError(InputError):
    """The run's model cannot take some of its media (422 `unsupported_media`)."""


def _decoded_size(content: str) -> int:
    return len(base64.b64decode(content, validate=True))


def _part(field: str, item: dict[str, Any], errors: list[str], where: str) -> dict[str, Any] | None:
    url, content, mime = item.get("url"), item.get("content"), item.get("mime_type")
    filename = item.get("filename")
    if isinstance(url, str) and content is None:
        data = "data:image/" if field == "images" else "data:"
        if not url.startswith(("https://", "http://", data)):
            errors.append(f"{where}.url: must be an http(s) URL or a {data} URL")
            return None
        if field == "images":
            return {"type": "image_url", "image_url": {"url": url}}
        if field == "audio":
            return {"type": "input_audio", "input_audio": {"url": url}}
        if field == "video":
            return {"type": "video_url", "video_url": {"url": url}}
        part: dict[str, Any] = {"type": "file", "file": {"url": url}}
        if isinstance(filename, str):
            part["file"]["filename"] = filename
        return part
    if not isinstance(content, str) or url is not None:
        errors.append(f"{where}: must be {{'url'}} or {{'content', 'mime_type'}}")
        return None
    expected = {"images": "image/", "audio": "audio/", "video": "video/"}.get(field, "")
    if not isinstance(mime, str) or "/" not in mime or not mime.startswith(expected):
        kind = {"images": "an image", "audio": "an audio", "video": "a video"}.get(field, "a")
        errors.append(f"{where}.mime_type: must be {kind} MIME type")
        return None
    try:
        size = _decoded_size(content)
    except (binascii.Error, ValueError):
        errors.append(f"{where}.content: must be base64")
        return None
    if size > MAX_MEDIA_BYTES:
        errors.append(f"{where}.content: {size} bytes, more than {MAX_MEDIA_BYTES}")
        return None
    data_url = f"data:{mime};base64,{content}"
    if field == "images":
        return {"type": "image_url", "image_url": {"url": data_url}}
    if field == "audio":
        fmt = AUDIO_FORMATS.get(mime, mime.split("/", 1)[1])
        return {"type": "input_audio", "input_audio": {"data": content, "format": fmt}}
    if field == "video":
        return {"type": "video_url", "video_url": {"url": data_url}}
    file: dict[str, Any] = {"file_data": data_url}
    if isinstance(filename, str):
        file["filename"] = filename
    return {"type": "file", "file": file}


def media_parts(media: dict[str, list[dict[str, Any]]], errors: list[str]) -> list[dict[str, Any]]:
    """Every media item as a content part, in the order images, audio, video, files;
    problems go into `errors`."""
    total = sum(len(media.get(field) or []) for field in MEDIA_FIELDS)
    if total > MAX_MEDIA_ITEMS:
        errors.append(f"media: {total} items, more than {MAX_MEDIA_ITEMS}")
        return []
    parts: list[dict[str, Any]] = []
    for field in MEDIA_FIELDS:
        for index, item in enumerate(media.get(field) or []):
            where = f"{field}[{index}]"
            if not isinstance(item, dict):
                errors.append(f"{where}: must be an object")
                continue
            part = _part(field, item, errors, where)
            if part is not None:
                parts.append(part)
    return parts


def kind_of(part: dict[str, Any]) -> str | None:
    """A content part's kind (see KINDS); None for text."""
    kind = part.get("type")
    if kind == "image_url":
        return "image"
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        if "url" in audio:
            return "audio_url"
        return "audio" if audio.get("format") in ("wav", "mp3") else "audio_url"
    if kind == "video_url":
        return "video"
    if kind == "file":
        file = part.get("file") or {}
        source = str(file.get("file_data") or file.get("url") or "")
        name = str(file.get("filename") or "")
        pdf = source.startswith("data:application/pdf") or name.lower().endswith(".pdf")
        if "url" in file:
            return "file_pdf_url" if pdf or source.lower().endswith(".pdf") else "file"
        if pdf:
            return "file_pdf"
        return "file_text" if source.startswith("data:text/") else "file"
    return None


def unsupported(messages: list[dict[str, Any]], accepted: frozenset[str], model: str) -> list[str]:
    """The parts of the run's user messages that `model` cannot take, one problem each."""
    problems: list[str] = []
    for message in messages:
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for part in content:
            kind = kind_of(part) if isinstance(part, dict) else None
            if kind is not None and kind not in accepted:
                problems.append(f"{model} cannot take {kind.replace('_', ' ')} input")
    return sorted(set(problems), key=problems.index)
