"""Media inputs: every kind as content parts, limits, and what each model takes."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from app.engine.errors import InputError
from app.engine.media import MAX_MEDIA_ITEMS, UnsupportedMediaError
from app.engine.models.anthropic import AnthropicModel
from app.engine.models.anthropic_messages import content_blocks
from app.engine.models.openai import OpenAIChatModel
from app.engine.models.test import TestModel

from .helpers import Models, Recorder, agent, make_runner, new_state, run

WAV = base64.b64encode(b"RIFF....WAVE").decode()
PDF = base64.b64encode(b"%PDF-1.4 hello").decode()
TEXT = base64.b64encode(b"plain notes").decode()
MEDIA: dict[str, list[dict[str, Any]]] = {
    "audio": [{"content": WAV, "mime_type": "audio/wav"}],
    "video": [{"url": "https://example.com/v.mp4"}],
    "files": [
        {"content": PDF, "mime_type": "application/pdf", "filename": "a.pdf"},
        {"content": TEXT, "mime_type": "text/plain", "filename": "notes.txt"},
    ],
}


async def test_every_kind_reaches_the_test_model_as_parts() -> None:
    recorder = Recorder(TestModel())
    spec = agent()
    runner = make_runner(spec, models=Models(test=recorder))
    images = [{"url": "https://example.com/i.png"}]
    result = await run(runner, spec, "look", images=images, media=MEDIA)

    assert result.last.status == "completed"
    assert result.last.content == "look"
    content = recorder.requests[0].messages[-1]["content"]
    assert content == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://example.com/i.png"}},
        {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
        {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}},
        {
            "type": "file",
            "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"},
        },
        {
            "type": "file",
            "file": {"file_data": f"data:text/plain;base64,{TEXT}", "filename": "notes.txt"},
        },
    ]


@pytest.mark.parametrize(
    ("client", "refused"),
    [
        (
            OpenAIChatModel(base_url="http://127.0.0.1:9", api_key="k"),
            ["openai:m cannot take video input", "openai:m cannot take file text input"],
        ),
        (
            AnthropicModel(base_url="http://127.0.0.1:9", api_key="k"),
            ["anthropic:m cannot take audio input", "anthropic:m cannot take video input"],
        ),
    ],
)
async def test_what_a_provider_cannot_take_is_refused_before_the_run(
    client: Any, refused: list[str]
) -> None:
    provider = "openai" if isinstance(client, OpenAIChatModel) else "anthropic"
    spec = agent(model=f"{provider}:m")
    runner = make_runner(spec, models=Models(**{provider: client}))
    with pytest.raises(UnsupportedMediaError) as caught:
        new_state(runner, spec, "look", media=MEDIA)
    assert caught.value.errors == refused
    await client.aclose()


def test_bad_items_and_limits_are_input_errors() -> None:
    spec = agent()
    runner = make_runner(spec)
    bad = {
        "audio": [{"content": "not base64!", "mime_type": "audio/wav"}],
        "video": [{"url": "ftp://x"}],
        "files": [{"content": PDF}, {"url": "https://x/a.pdf", "content": PDF}],
    }
    with pytest.raises(InputError) as caught:
        new_state(runner, spec, "x", media=bad)
    assert caught.value.errors == [
        "audio[0].content: must be base64",
        "video[0].url: must be an http(s) URL or a data: URL",
        "files[0].mime_type: must be a MIME type",
        "files[1]: must be {'url'} or {'content', 'mime_type'}",
    ]
    many = {"files": [{"url": f"https://x/{i}.pdf"} for i in range(MAX_MEDIA_ITEMS + 1)]}
    with pytest.raises(InputError) as caught:
        new_state(runner, spec, "x", media=many)
    assert caught.value.errors == [
        f"media: {MAX_MEDIA_ITEMS + 1} items, more than {MAX_MEDIA_ITEMS}"
    ]


def test_anthropic_gets_documents() -> None:
    blocks = content_blocks(
        [
            {"type": "text", "text": "read"},
            {
                "type": "file",
                "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"},
            },
            {"type": "file", "file": {"file_data": f"data:text/plain;base64,{TEXT}"}},
            {"type": "file", "file": {"url": "https://x/a.pdf"}},
        ]
    )
    assert blocks == [
        {"type": "text", "text": "read"},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
            "title": "a.pdf",
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"},
        },
        {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}},
    ]
