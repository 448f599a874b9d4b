"""Keyset pagination: `limit` and an opaque `cursor`, answered as
`{"data": [...], "next_cursor": ...}`. A list route asks its repository for
`limit + 1` rows after the cursor's key and hands them to `page_of`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from app.errors import ValidationFailed, problems

T = TypeVar("T")
R = TypeVar("R")

LimitQuery = Annotated[int, Query(ge=1, le=200, description="Page size (1-200).")]
CursorQuery = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]
INVALID_PAGE = problems({422: "Invalid filter or cursor."})


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, *kinds: type) -> list[Any]:
    """The key values stored in a cursor, one of each of `kinds`; 422 when it was
    not made by us."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != len(kinds)
        or not all(isinstance(value, kind) for value, kind in zip(values, kinds, strict=True))
    ):
        raise invalid_cursor()
    return values


def invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        "Invalid cursor.",
        errors=[{"loc": ["query", "cursor"], "msg": "not a cursor", "type": "value_error"}],
    )


def page_of(
    rows: Sequence[R], limit: int, key: Callable[[R], list[Any]]
) -> tuple[list[R], str | None]:
    """The first `limit` of `rows` (fetched as `limit + 1`) and the cursor that
    continues after the last of them, None when nothing follows."""
    page = list(rows[:limit])
    return page, encode_cursor(key(page[-1])) if len(rows) > limit else None


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) key of a newest-first list; 422 when the cursor was
    not made by us."""
    created, last_id = decode_cursor(cursor, str, str)
    try:
        moment = datetime.fromisoformat(created)
    except ValueError:
        raise invalid_cursor() from None
    if moment.tzinfo is None:  # ours carry their offset: compared with stored UTC times
        raise invalid_cursor()
    return moment, last_id


def time_key(created_at: datetime, row_id: str) -> list[Any]:
    """The cursor key `decode_time_cursor` reads back."""
    return [created_at.isoformat(), row_id]
