"""Server tools: the registry, the `@tool` decorator and safe execution.

A tool is a Python function. Its JSON Schema comes from the type hints (via
pydantic), its description from the docstring. Arguments are validated before
the call; sync functions run in a worker thread, async ones are awaited.
`execute_tool` never raises for a tool's own failure: an exception, a timeout
or invalid arguments become a `ToolOutcome` with `error` set, which the loop
turns into a tool result the model can read.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import inspect
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar, cast, get_args, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_jsonable_python

from app.engine import builtin_tools
from app.engine.models.base import ToolDefinition
from app.engine.modules import defined_in
from app.engine.spec import TOOL_NAME_PATTERN

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

Emitter = Callable[[str, Any], None]


class RunContext:
    """What a tool or a hook learns about the run that called it.

    Declare a parameter annotated `RunContext` to receive it; it is not part of
    the tool's JSON Schema. `session_state` is the tool's copy of the session
    state: the keys it adds, changes or removes are merged into the run's state
    when it returns (the last tool to finish wins a key; a tool that fails
    changes nothing). `emit(name, data)`
    sends a `CustomEvent`; it is safe to call from sync tools in worker threads.
    """

    def __init__(
        self,
        *,
        run_id: str,
        session_id: str,
        user_id: str | None,
        agent_id: str,
        session_state: dict[str, Any],
        tool_call_id: str | None = None,
        emitter: Emitter | None = None,
    ) -> None:
        self.run_id = run_id
        self.session_id = session_id
        self.user_id = user_id
        self.agent_id = agent_id
        self.tool_call_id = tool_call_id
        self.session_state = session_state
        self._emitter = emitter

    @property
    def idempotency_key(self) -> str:
        """Stable across retries of the same call: use it for side effects (the run's
        id for a hook, which is not a tool call)."""
        if self.tool_call_id is None:
            return self.run_id
        return f"{self.run_id}:{self.tool_call_id}"

    def emit(self, name: str, data: Any = None) -> None:
        """Emit a `CustomEvent` named `name` carrying `data` (JSON-serialisable)."""
        if self._emitter is not None:
            self._emitter(name, to_jsonable_python(data, fallback=str))


class ToolArgumentsError(ValueError):
    """The model called a tool with arguments that do not match its schema."""


class Tool(Generic[P, R]):
    """A registered function with its schema; calling it calls the function."""

    def __init__(
        self,
        function: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.function = function
        self.name = name or function.__name__
        if not re.match(TOOL_NAME_PATTERN, self.name):
            raise ValueError(f"invalid tool name {self.name!r}")
        summary, arg_docs = _parse_docstring(inspect.getdoc(function) or "")
        self.description = description if description is not None else summary
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(function)
        self.context_param, self.arguments_model = _arguments_model(function, self.name, arg_docs)
        self.parameters = _clean_schema(self.arguments_model.model_json_schema())
        functools.update_wrapper(self, function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def definition(self) -> ToolDefinition:
        return ToolDefinition(self.name, self.description, self.parameters)

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The validated keyword arguments; raises ToolArgumentsError."""
        try:
            model = self.arguments_model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ToolArgumentsError(problems) from None
        return {name: getattr(model, name) for name in type(model).model_fields}

    async def run(self, arguments: dict[str, Any], ctx: RunContext) -> Any:
        """Validate, then call (in a worker thread if sync). `execute_tool` adds the timeout."""
        kwargs = self.validate(arguments)
        if self.context_param is not None:
            kwargs[self.context_param] = ctx
        function = cast(Callable[..., Any], self.function)
        if self.is_async:
            return await function(**kwargs)
        return await asyncio.to_thread(function, **kwargs)


AnyTool = Tool[..., Any]


@dataclass(slots=True, frozen=True)
class ToolOutcome:
    """What became of one execution: a JSON-able result, or an error for the model."""

    result: Any = None
    error: str | None = None

    def content(self) -> str:
        """The tool message content the model reads."""
        if self.error is not None:
            return f"Error: {self.error}"
        return result_text(self.result)


def result_text(result: Any) -> str:
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))


async def execute_tool(tool: AnyTool, arguments: dict[str, Any], ctx: RunContext) -> ToolOutcome:
    """Run a tool within its timeout; its failures become an error outcome.

    Cancellation still propagates. A sync tool that times out keeps its worker
    thread until it returns: threads cannot be killed; the run does not wait.
    """
    deadline = asyncio.timeout(tool.timeout)
    try:
        async with deadline:
            result = await tool.run(arguments, ctx)
    except ToolArgumentsError as exc:
        return ToolOutcome(error=f"invalid arguments for tool {tool.name}: {exc}")
    except TimeoutError as exc:
        if deadline.expired():
            return ToolOutcome(error=f"tool {tool.name} timed out after {tool.timeout} s")
        return ToolOutcome(error=f"tool {tool.name} failed: TimeoutError: {exc}")
    except Exception as exc:
        logger.info("tool %s raised", tool.name, exc_info=True)
        return ToolOutcome(error=f"tool {tool.name} failed: {type(exc).__name__}: {exc}")
    try:
        return ToolOutcome(result=to_jsonable_python(result, fallback=str))
    except Exception:
        return ToolOutcome(result=str(result))


class ToolRegistry:
    """Tools by name. `load_modules` imports the modules named in TOOL_MODULES."""

    def __init__(self, tools: Iterable[AnyTool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, AnyTool] = {}
        self._lock = threading.Lock()
        for item in tools:
            self.register(item)

    def register(
        self,
        function: AnyTool | Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> AnyTool:
        """Add a tool, or a plain function (wrapped); another tool of the same name is an error."""
        if isinstance(function, Tool) and name is None and description is None and timeout is None:
            item: AnyTool = function
        else:
            raw = function.function if isinstance(function, Tool) else function
            item = Tool(raw, name=name, description=description, timeout=timeout)
        with self._lock:
            existing = self._tools.get(item.name)
            if existing is not None and existing is not item:
                raise ValueError(f"a tool named {item.name!r} is already registered")
            self._tools[item.name] = item
        return item

    @overload
    def tool(self, function: Callable[P, R], /) -> Tool[P, R]: ...

    @overload
    def tool(
        self,
        function: None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Callable[[Callable[P, R]], Tool[P, R]]: ...

    def tool(
        self,
        function: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Decorator: `@registry.tool` or `@registry.tool(name=..., timeout=...)`."""

        def decorate(func: Callable[..., Any]) -> AnyTool:
            item = Tool(func, name=name, description=description, timeout=timeout)
            self.register(item)
            return item

        return decorate(function) if function is not None else decorate

    def get(self, name: str) -> AnyTool:
        """The tool named `name`; raises KeyError."""
        return self._tools[name]

    def list(self) -> list[AnyTool]:
        return sorted(self._tools.values(), key=lambda t: t.name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[AnyTool]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._tools)

    def load_modules(self, names: Iterable[str]) -> builtins.list[str]:
        """Import each module; register the Tool objects it defines. Returns their names."""
        found: builtins.list[str] = []
        for value in defined_in(names, Tool):
            self.register(value)
            found.append(value.name)
        return found


def _arguments_model(
    function: Callable[..., Any], tool_name: str, arg_docs: dict[str, str]
) -> tuple[str | None, type[BaseModel]]:
    hints = get_type_hints(function, include_extras=True)
    context_param: str | None = None
    fields: dict[str, Any] = {}
    for param in inspect.signature(function).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {tool_name}: *args and **kwargs are not supported")
        annotation = hints.get(param.name, Any)
        if annotation is RunContext or RunContext in get_args(annotation):
            context_param = param.name
            continue
        default = ... if param.default is param.empty else param.default
        if param.name in arg_docs:
            fields[param.name] = (annotation, Field(default, description=arg_docs[param.name]))
        else:
            fields[param.name] = (annotation, default)
    model = create_model(
        f"{tool_name}_arguments",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=False),
        **fields,
    )
    return context_param, model


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's generated titles at the top level and on each property."""
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    schema.setdefault("properties", {})
    return schema


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?):\s*$")
_ARG_LINE = re.compile(r"^\s+(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary (text before the first section) and Google-style `Args:` entries."""
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in doc.splitlines():
        header = _SECTION.match(line.strip())
        if header:
            section, current = header.group(1), None
            continue
        if section is None:
            summary.append(line)
        elif section in ("Args", "Arguments", "Parameters"):
            match = _ARG_LINE.match(line)
            if match:
                current = match.group(1).lstrip("*")
                args[current] = match.group(2).strip()
            elif current and line.strip():
                args[current] = f"{args[current]} {line.strip()}".strip()
    return "\n".join(summary).strip(), args


BUILTIN_TOOLS: list[AnyTool] = [
    Tool(builtin_tools.current_time),
    Tool(builtin_tools.calculator),
]

default_registry = ToolRegistry(BUILTIN_TOOLS)


@overload
def tool(function: Callable[P, R], /) -> Tool[P, R]: ...


@overload
def tool(
    function: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...


def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Any:
    """Register a function in the default registry: `@tool` or `@tool(name=..., timeout=...)`."""
    if function is not None:
        return default_registry.tool(function)
    return default_registry.tool(name=name, description=description, timeout=timeout)
