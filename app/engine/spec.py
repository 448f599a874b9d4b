"""Agent definitions as the engine sees them.

These pydantic models are the single description of an agent: the HTTP layer
validates request bodies with them and stores them; the loop runs them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    field_validator,
)

AGENT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
MCP_SERVER_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
# MCP tool names (SEP-986): letters, digits, `_`, `-` and `.`, up to 128.
MCP_TOOL_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"
MCP_PREFIX = "mcp:"
# A registered tool's name, or `mcp:<server>` / `mcp:<server>/<tool>`.
TOOL_ENTRY_PATTERN = r"^(?:[a-zA-Z0-9_-]{1,64}|mcp:[a-zA-Z0-9_-]{1,64}(?:/[A-Za-z0-9._-]{1,128})?)$"

JsonObject = dict[str, Any]
# The bound of counts the service stores as integers (turns, runs, lengths, seqs).
MAX_INT32 = 2**31 - 1


McpToolName = Annotated[str, Field(pattern=MCP_TOOL_NAME_PATTERN)]
HookName = Annotated[str, Field(min_length=1, max_length=128)]


class StrictModel(BaseModel):
    """A model that rejects unknown fields."""

    model_config = ConfigDict(extra="forbid")


class ModelRef(StrictModel):
    """A model named as an object: `{"provider": "openai", "name": "gpt-4o-mini"}`."""

    provider: str = Field(min_length=1)
    name: str = Field(min_length=1)
    settings: JsonObject = Field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{self.provider}:{self.name}"


class ToolUse(StrictModel):
    """A registered server tool used by an agent, with its human-in-the-loop flags."""

    type: Literal["function"] = "function"
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    requires_confirmation: StrictBool = False
    requires_user_input: StrictBool = False
    # The argument names the user supplies; None means every parameter of the tool.
    user_input_fields: list[str] | None = None


class ClientTool(StrictModel):
    """A tool the caller executes: its calls pause the run for the client."""

    type: Literal["client"]
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = ""
    parameters: JsonObject = Field(default_factory=lambda: {"type": "object", "properties": {}})


class McpToolUse(StrictModel):
    """Tools of an MCP server named in MCP_SERVERS: all of them, or those in `tools`.

    `requires_confirmation` is true for every one of them, or the names of those
    whose calls pause the run for a human. `"mcp:calc"` and `"mcp:calc/add"` are
    the short forms (without confirmation).
    """

    type: Literal["mcp"]
    server: str = Field(pattern=MCP_SERVER_NAME_PATTERN)
    tools: list[Annotated[str, Field(pattern=MCP_TOOL_NAME_PATTERN)]] | None = None
    requires_confirmation: (
        StrictBool | list[Annotated[str, Field(pattern=MCP_TOOL_NAME_PATTERN)]]
    ) = False

    def confirms(self, tool: str) -> bool:
        """Whether calls of this server's `tool` need a human's confirmation."""
        if isinstance(self.requires_confirmation, bool):
            return self.requires_confirmation
        return tool in self.requires_confirmation


ToolEntry = Annotated[str, Field(pattern=TOOL_ENTRY_PATTERN)] | ToolUse | ClientTool | McpToolUse


def mcp_use(entry: ToolEntry) -> McpToolUse | None:
    """The MCP tools an entry names (`"mcp:calc"`, `"mcp:calc/add"` or the object), else None."""
    if isinstance(entry, McpToolUse):
        return entry
    if isinstance(entry, str) and entry.startswith(MCP_PREFIX):
        server, _, tool = entry.removeprefix(MCP_PREFIX).partition("/")
        return McpToolUse(type="mcp", server=server, tools=[tool] if tool else None)
    return None


class RegexGuardrail(StrictModel):
    """Trips when the pattern matches anywhere in the text."""

    type: Literal["regex"]
    name: str | None = None
    pattern: str = Field(min_length=1)
    ignore_case: StrictBool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return value


class BlocklistGuardrail(StrictModel):
    """Trips when any of the words occurs in the text (case-insensitive by default)."""

    type: Literal["blocklist"]
    name: str | None = None
    words: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    case_sensitive: StrictBool = False


class MaxLengthGuardrail(StrictModel):
    """Trips when the text is longer than `max_length` characters."""

    type: Literal["max_length"]
    name: str | None = None
    max_length: StrictInt = Field(ge=1, le=MAX_INT32)


class AgentGuardrail(StrictModel):
    """Another stored agent classifies the text and says whether to trip.

    The classifier answers either structured output with a boolean
    `tripwire_triggered` field, or text: "true"/"yes"/"trip" (case-insensitive,
    surrounding whitespace and punctuation ignored) trips, anything else passes.
    """

    type: Literal["agent"]
    name: str | None = None
    agent_id: str = Field(pattern=AGENT_ID_PATTERN)


class PythonGuardrail(StrictModel):
    """A guardrail function registered from a module named in TOOL_MODULES."""

    type: Literal["python"]
    name: str = Field(min_length=1)


Guardrail = Annotated[
    RegexGuardrail | BlocklistGuardrail | MaxLengthGuardrail | AgentGuardrail | PythonGuardrail,
    Field(discriminator="type"),
]


GUARDRAIL: TypeAdapter[Guardrail] = TypeAdapter(Guardrail)


class HistoryConfig(StrictModel):
    """How much of the session's earlier runs goes into the context."""

    enabled: StrictBool = True
    num_runs: StrictInt = Field(default=10, ge=0, le=MAX_INT32)


class MemoryConfig(StrictModel):
    """User memories (Agno's user memories); they need a `user_id` on the run."""

    enabled: StrictBool = Field(
        default=False,
        description="After each run a memory model reads the user's input and adds, "
        "updates or deletes that user's memories.",
    )
    agentic: StrictBool = Field(
        default=False,
        description="Instead, the agent gets the tools add_memory, update_memory and "
        "delete_memory to manage the user's memories itself.",
    )
    model: str | ModelRef | None = Field(
        default=None, description="The memory model; by default the agent's."
    )
    add_to_context: StrictBool = Field(
        default=True,
        description="The user's memories go into the system message of every run of "
        "that user, in any session.",
    )

    @property
    def active(self) -> bool:
        return self.enabled or self.agentic


class SessionSummaryConfig(StrictModel):
    """A summary of the session, rewritten after each run."""

    enabled: StrictBool = Field(
        default=False,
        description="After each run a model rewrites the session's summary "
        "(shown on GET /v1/sessions/{id}).",
    )
    model: str | ModelRef | None = Field(
        default=None, description="The summary model; by default the agent's."
    )
    add_to_context: StrictBool = Field(
        default=True,
        description="The summary goes into the system message of later runs of the session.",
    )


class AgentFields(StrictModel):
    """Every field of an agent definition a client may set."""

    name: str = Field(default="", max_length=200)
    description: str = ""
    instructions: str | list[str] = ""
    model: str | ModelRef = "test:echo"
    model_settings: JsonObject = Field(default_factory=dict)
    tools: list[ToolEntry] = Field(default_factory=list)
    handoffs: list[Annotated[str, Field(pattern=AGENT_ID_PATTERN)]] = Field(default_factory=list)
    handoff_description: str = ""
    output_schema: JsonObject | None = None
    input_schema: JsonObject | None = None
    max_turns: StrictInt = Field(default=10, ge=1, le=MAX_INT32)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    add_session_state_to_context: StrictBool = False
    input_guardrails: list[Guardrail] = Field(default_factory=list)
    output_guardrails: list[Guardrail] = Field(default_factory=list)
    pre_hooks: list[HookName] = Field(
        default_factory=list,
        description="Hooks run in order on the input before any model sees it "
        "(and before the input guardrails); built-in: `pii_redaction`.",
    )
    post_hooks: list[HookName] = Field(
        default_factory=list,
        description="Hooks run in order on the final output before it is stored "
        "(and before the output guardrails).",
    )
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    session_summary: SessionSummaryConfig = Field(default_factory=SessionSummaryConfig)
    parser_model: str | ModelRef | None = Field(
        default=None,
        description="With an output schema: the main model answers freely and this model "
        "turns its answer into the schema.",
    )
    parser_model_prompt: str | None = None
    output_model: str | ModelRef | None = Field(
        default=None,
        description="After the main model's last turn this model writes the answer the user "
        "gets (RunContent); the main model's text becomes RunIntermediateContent.",
    )
    output_model_prompt: str | None = None
    metadata: JsonObject = Field(default_factory=dict)


class AgentSpec(AgentFields):
    """A stored agent at one version: what the loop runs."""

    id: str = Field(pattern=AGENT_ID_PATTERN)
    version: int = Field(default=1, ge=1)

    @property
    def model_name(self) -> str:
        """The model as `provider:name`."""
        return self.model if isinstance(self.model, str) else self.model.qualified

    @property
    def instructions_text(self) -> str:
        if isinstance(self.instructions, str):
            return self.instructions
        return "\n".join(self.instructions)


def split_model(model: str | ModelRef) -> tuple[str, str]:
    """`"openai:gpt-4o"` -> `("openai", "gpt-4o")`; raises ValueError without a provider."""
    if isinstance(model, ModelRef):
        return model.provider, model.name
    provider, sep, name = model.partition(":")
    if not sep or not provider or not name:
        raise ValueError(f"model must be 'provider:name', got {model!r}")
    return provider, name
