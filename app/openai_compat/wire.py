"""Encoding the SDK's own types for the wire, once where it counts.

Every payload is built with the `openai` package's types and dumped with the
fields that were set (as OpenAI sends them: no page of nulls for the fields it
leaves out). What a stream sends many times (a text delta, an item's events) is
encoded once, as a `Template`: the SDK's payload with holes for the values that
change, filled with their JSON text (`jsontext`: integers past 64 bits too); an
SDK model's validation costs far more than the bytes it describes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from app.engine import jsontext

DONE = b"data: [DONE]\n\n"
_HOLE = re.compile(rb'"@@(\w+)@@"')


def hole(name: str) -> str:
    """A placeholder to put where a `Template` has a hole."""
    return f"@@{name}@@"


def payload(model: BaseModel) -> dict[str, Any]:
    """The JSON value of an SDK object, with the fields that were set."""
    return model.model_dump(mode="json", exclude_unset=True, by_alias=True)


class Template:
    """Bytes encoded once, with holes (`"@@name@@"` in the encoded JSON) filled
    with the JSON of the values given for each."""

    __slots__ = ("names", "parts")

    def __init__(self, encoded: bytes) -> None:
        pieces = _HOLE.split(encoded)
        self.parts = pieces[0::2]
        self.names = [name.decode() for name in pieces[1::2]]

    @classmethod
    def data_line(cls, value: dict[str, Any]) -> Template:
        return cls(b"data: %s\n\n" % jsontext.dumps(value))

    @classmethod
    def typed_event(cls, value: dict[str, Any]) -> Template:
        return cls(b"event: %s\ndata: %s\n\n" % (value["type"].encode(), jsontext.dumps(value)))

    def partial(self, **values: Any) -> Template:
        """This template with some of its holes filled (those of a text item, say)."""
        filled = Template(b"")
        parts, names = [self.parts[0]], []
        for index, name in enumerate(self.names, 1):
            if name in values:
                parts[-1] += jsontext.dumps(values[name]) + self.parts[index]
            else:
                names.append(name)
                parts.append(self.parts[index])
        filled.parts, filled.names = parts, names
        return filled

    def fill(self, **values: Any) -> bytes:
        """The bytes with each hole filled with the JSON of its value."""
        parts = self.parts
        out = [parts[0]]
        for index, name in enumerate(self.names, 1):
            out.append(jsontext.dumps(values[name]))
            out.append(parts[index])
        return b"".join(out)


def unix_seconds(value: datetime | str) -> int:
    """A timestamp (a datetime, or RFC 3339 text) in whole Unix seconds."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:  # stored as UTC
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
