"""Settings: defaults that run, and bad values that stop start-up with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import DEFAULT_DATABASE_URL, Settings
from app.runtime import build_runtime

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_run_out_of_the_box() -> None:
    settings = Settings(_env_file=None)
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.is_sqlite
    assert settings.auto_migrate is True
    assert settings.max_body_bytes == 10 * 1024 * 1024


def test_lists_come_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOL_MODULES", "a.tools, b.tools")
    monkeypatch.setenv("CORS_ORIGINS", "http://x.test")
    settings = Settings(_env_file=None)
    assert settings.tool_modules == ["a.tools", "b.tools"]
    assert settings.cors_origins == ["http://x.test"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1000, 5, 5", (1000, 5, 5)), ("off", None), ("OFF", None)],
)
def test_gc_threshold_comes_comma_separated_or_off(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[int, int, int] | None
) -> None:
    monkeypatch.setenv("GC_THRESHOLD", value)
    assert Settings(_env_file=None).gc_threshold == expected


@pytest.mark.parametrize(("value", "enabled"), [(None, True), ("0.05", True), ("0", False)])
def test_the_read_coalescing_reaches_the_models_pacer(
    monkeypatch: pytest.MonkeyPatch, value: str | None, enabled: bool
) -> None:
    if value is not None:
        monkeypatch.setenv("MODEL_READ_COALESCE_SECONDS", value)
    pacer = build_runtime(Settings(_env_file=None)).models.pacer
    assert pacer.max_hold == (0.2 if value is None else float(value))
    assert pacer.enabled is enabled


def test_gc_threshold_defaults_to_tuned() -> None:
    assert Settings(_env_file=None).gc_threshold == (50_000, 20, 10)


@pytest.mark.parametrize(
    ("name", "value", "mention"),
    [
        ("DATABASE_URL", "mysql://nope", "DATABASE_URL"),
        ("MAX_BODY_BYTES", "lots", "MAX_BODY_BYTES"),
        ("AUTO_MIGRATE", "perhaps", "AUTO_MIGRATE"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"),
        ("MODEL_PROVIDERS", "{not json", "MODEL_PROVIDERS"),
        ("GC_THRESHOLD", "50000,x,10", "GC_THRESHOLD"),
        ("GC_THRESHOLD", "0,20,10", "GC_THRESHOLD"),
        ("GC_THRESHOLD", "50000,20", "GC_THRESHOLD"),
        ("MODEL_READ_COALESCE_SECONDS", "-0.1", "MODEL_READ_COALESCE_SECONDS"),
        ("MODEL_READ_COALESCE_SECONDS", "5", "MODEL_READ_COALESCE_SECONDS"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        ("TRACE_INCLUDE_SENSITIVE_DATA", "maybe", "TRACE_INCLUDE_SENSITIVE_DATA"),
        ("OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER"),
    ],
)
def test_bad_setting_fails_start_up_with_one_line(name: str, value: str, mention: str) -> None:
    env = {**os.environ, name: value}
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agentd: invalid settings:")
    assert mention in lines[0]
