"""Event timestamps: RFC 3339 UTC with milliseconds, right across second and day
boundaries (the formatted parts are reused within a second and a millisecond)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.engine import events


@pytest.mark.parametrize(
    "instants_ms",
    [
        [1_795_000_000_000, 1_795_000_000_000, 1_795_000_000_999, 1_795_000_001_000],
        [1_795_046_399_998, 1_795_046_399_999, 1_795_046_400_000, 1_795_046_400_001],
    ],
)
def test_utcnow_iso_matches_the_clock(
    monkeypatch: pytest.MonkeyPatch, instants_ms: list[int]
) -> None:
    for ms in instants_ms:
        monkeypatch.setattr(events.time, "time_ns", lambda ms=ms: ms * 1_000_000 + 123_456)
        expected = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
        assert events.utcnow_iso() == expected.replace("+00:00", "Z")
