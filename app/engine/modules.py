"""Importing the modules named in TOOL_MODULES and finding what they define."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def defined_in(names: Iterable[str], kind: type[T]) -> Iterator[T]:
    """Import each module; yield the module-level objects that are `kind` instances."""
    for module_name in names:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, kind):
                yield value
