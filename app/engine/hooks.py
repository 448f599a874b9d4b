"""Pre- and post-hooks (Agno's `pre_hooks` / `post_hooks`): functions run on a
run's input before any model sees it, and on its output before it is stored.

A hook is `def name(data, ctx: RunContext)` (sync or async) registered with
`@hook`: it returns None to keep `data`, or a replacement; it raises
`HookRejected(message)` to end the run with `hook_rejected`. Any other
exception is a bug in the hook: logged with its message, the run ends with
`internal_error` (the message stays in the log). Built-in: `pii_redaction`.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import inspect
import logging
import re
import threading
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any, Literal, overload

from app.engine.context import Checkpoint, RunScope
from app.engine.errors import INTERNAL_ERROR_MESSAGE, RunFailure
from app.engine.events import (
    PostHookCompleted,
    PostHookStarted,
    PreHookCompleted,
    PreHookStarted,
    RunEvent,
)
from app.engine.modules import defined_in
from app.engine.tools import RunContext

logger = logging.getLogger(__name__)

HookFunction = Callable[[Any, RunContext], Any]


class HookRejected(Exception):
    """Raised by a hook to reject the input or the output: the run ends with
    `hook_rejected` and this message."""

    def __init__(self, message: str = "rejected by a hook") -> None:
        super().__init__(message)
        self.message = message


class Hook:
    """A registered hook; calling it calls the function."""

    def __init__(self, function: HookFunction, name: str | None = None) -> None:
        self.function = function
        self.name = name or function.__name__

    def __call__(self, data: Any, ctx: RunContext) -> Any:
        return self.function(data, ctx)

    def __repr__(self) -> str:
        return f"Hook({self.name!r})"

    async def apply(self, data: Any, ctx: RunContext) -> Any:
        """The hook's answer: None (keep) or a replacement; sync hooks run in a thread."""
        if inspect.iscoroutinefunction(self.function):
            return await self.function(data, ctx)
        answer = await asyncio.to_thread(self.function, data, ctx)
        return await answer if inspect.isawaitable(answer) else answer


class HookRegistry:
    """Hooks by name."""

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        self._items: dict[str, Hook] = {}
        self._lock = threading.Lock()
        for item in hooks:
            self.register(item)

    def register(self, function: HookFunction | Hook, *, name: str | None = None) -> Hook:
        if isinstance(function, Hook) and name is None:
            item = function
        else:
            raw = function.function if isinstance(function, Hook) else function
            item = Hook(raw, name)
        with self._lock:
            existing = self._items.get(item.name)
            if existing is not None and existing is not item:
                raise ValueError(f"a hook named {item.name!r} is already registered")
            self._items[item.name] = item
        return item

    def hook(self, function: HookFunction | None = None, /, *, name: str | None = None) -> Any:
        """Decorator: `@registry.hook` or `@registry.hook(name=...)`."""

        def decorate(func: HookFunction) -> Hook:
            return self.register(func, name=name)

        return decorate(function) if function is not None else decorate

    def get(self, name: str) -> Hook:
        """Raises KeyError."""
        return self._items[name]

    def list(self) -> builtins.list[Hook]:
        return sorted(self._items.values(), key=lambda h: h.name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def load_modules(self, names: Iterable[str]) -> builtins.list[str]:
        """Import each module; register the hooks it defines. Returns their names."""
        found: builtins.list[str] = []
        for value in defined_in(names, Hook):
            self.register(value)
            found.append(value.name)
        return found


# Payment cards: 13 to 19 digits, spaces or dashes between them, passing Luhn's check.
_CARD = re.compile(r"(?<![\w+])\d(?:[ -]?\d){12,18}(?!\w)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Phone numbers: an optional +, then 7 to 15 digits in groups.
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{5,}\d(?!\w)")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD]" if _luhn(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[PHONE]" if 7 <= len(digits) <= 15 else match.group(0)


def redact(text: str) -> str:
    """E-mail addresses, payment card numbers and phone numbers replaced by
    `[EMAIL]`, `[CARD]` and `[PHONE]`."""
    text = _EMAIL.sub("[EMAIL]", text)
    text = _CARD.sub(_card, text)
    return _PHONE.sub(_phone, text)


def pii_redaction(data: Any, ctx: RunContext) -> Any:
    """Built-in pre-hook: personal data in the user's input replaced by placeholders."""
    if isinstance(data, str):
        return redact(data)
    return [_redact_message(message) for message in data]


def _redact_message(message: dict[str, Any]) -> dict[str, Any]:
    if message.get("role") != "user":
        return message
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": redact(content)}
    if isinstance(content, list):
        parts = [
            {**part, "text": redact(part["text"])} if part.get("type") == "text" else part
            for part in content
        ]
        return {**message, "content": parts}
    return message


BUILTIN_HOOKS = [Hook(pii_redaction)]
default_hooks = HookRegistry(BUILTIN_HOOKS)


@overload
def hook(function: HookFunction, /) -> Hook: ...


@overload
def hook(*, name: str | None = None) -> Callable[[HookFunction], Hook]: ...


def hook(function: HookFunction | None = None, /, *, name: str | None = None) -> Any:
    """Register `(data, ctx) -> None | replacement` (sync or async) in the default registry."""
    if function is not None:
        return default_hooks.hook(function)
    return default_hooks.hook(name=name)


async def run_hooks(
    scope: RunScope,
    stage: Literal["pre", "post"],
    names: list[str],
    data: Any,
    registry: HookRegistry,
    apply: Callable[[Any], None],
) -> AsyncGenerator[RunEvent | Checkpoint, None]:
    """Run the hooks `names` in order on `data`; each replacement is passed on to
    the next hook and handed to `apply` (checkpointed before its Completed event).
    Raises RunFailure (`hook_rejected`, or `internal_error` for a hook's bug)."""
    started: type[PreHookStarted] | type[PostHookStarted] = (
        PreHookStarted if stage == "pre" else PostHookStarted
    )
    completed: type[PreHookCompleted] | type[PostHookCompleted] = (
        PreHookCompleted if stage == "pre" else PostHookCompleted
    )
    state = scope.state
    for name in names:
        yield scope.event(started, hook_name=name)
        try:
            function = registry.get(name)
        except KeyError:
            raise RunFailure("user_error", f"hook {name!r} is not registered") from None
        ctx = RunContext(
            run_id=state.run_id,
            session_id=state.session_id,
            user_id=state.user_id,
            agent_id=scope.spec.id,
            session_state=copy.deepcopy(state.session_state),  # hooks only read it
        )
        try:
            answer = await function.apply(data, ctx)
            if answer is not None:
                apply(answer)  # raises TypeError for what cannot replace `data`
        except HookRejected as exc:
            raise RunFailure("hook_rejected", exc.message) from None
        except Exception:
            logger.exception("run %s: the %s-hook %r failed", state.run_id, stage, name)
            raise RunFailure("internal_error", INTERNAL_ERROR_MESSAGE) from None
        if answer is not None:
            data = answer
            yield scope.checkpoint()
        yield scope.event(completed, hook_name=name)
