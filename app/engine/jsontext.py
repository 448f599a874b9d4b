"""JSON text of any JSON value, integers past 64 bits included.

orjson is fast but refuses to write integers outside 64 bits, which JSON allows
and tools may return, and reads them as floats; such values go through
pydantic-core and the standard library instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pydantic_core


def dumps(value: Any, option: int = 0) -> bytes:
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError:
        if option & orjson.OPT_SORT_KEYS:
            value = _sorted(value)
        return pydantic_core.to_json(value)


def text(value: Any) -> str:
    """`value` as a JSON str, non-string keys allowed: the database's JSON
    columns, written several times per run, so one call deep."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return pydantic_core.to_json(value).decode()


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


# 19 digits or more may be past 64 bits, which orjson would read as a float.
_LONG_NUMBER = re.compile(rb"[0-9]{19,}")


def loads(data: bytes | str) -> Any:
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_NUMBER.search(raw) is not None:
        return json.loads(raw)
    return orjson.loads(raw)
