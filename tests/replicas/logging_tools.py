"""A tool that writes a log line while its run is handled (what the run's log
fields are checked on)."""

from __future__ import annotations

import logging

from app.engine.tools import tool

log = logging.getLogger("tests.note")


@tool
def note(text: str) -> str:
    """Write a note to the log.

    Args:
        text: What to note.
    """
    log.warning("note: %s", text)
    return f"noted {text}"
