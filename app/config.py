"""Settings: every knob of the service, typed, with defaults that run out of the box.

Values come from the environment (or a `.env` file). A bad value stops
start-up with one clear line (see `load_settings`).
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from app.engine.models.registry import ProviderProfile
from app.engine.spec import MCP_SERVER_NAME_PATTERN

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/agentd.db"


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class McpServerBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: float = Field(default=60.0, gt=0, description="Seconds one tool call may take.")
    connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to open the session and list the tools."
    )


class McpHttpServer(McpServerBase):
    """An MCP server reached over Streamable HTTP."""

    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)


class McpStdioServer(McpServerBase):
    """An MCP server started as a subprocess, spoken to over its stdin and stdout."""

    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


McpServerConfig = McpHttpServer | McpStdioServer


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    auto_migrate: bool = Field(default=True, description="Upgrade the schema at start-up.")
    seed_demo_agent: bool = Field(
        default=True, description="Create the `demo` agent (test:echo) when it does not exist."
    )
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    tool_modules: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description=(
            "`json`: one JSON object per line, with the run being handled (run_id,"
            " session_id, agent_id, trace_id, span_id) on every line written for it."
        ),
    )

    # Tracing (where spans go: the standard OTEL_* variables, see app/tracing)
    tracing_disabled: bool = Field(
        default=False,
        description="No run is traced, whatever OTEL_* say or a run asks for.",
    )
    trace_include_sensitive_data: bool = Field(
        default=True,
        description=(
            "Traces may record message contents, tool arguments and results; a run can"
            " turn it off for itself (run_config), not on when this is false."
        ),
    )

    # Models
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    # Named OpenAI-compatible (or Anthropic) endpoints: {"ollama": {"base_url": "..."}}
    model_providers: dict[str, ProviderProfile] = Field(default_factory=dict)
    model_timeout: float = Field(default=60.0, gt=0)
    model_max_retries: int = Field(default=2, ge=0)
    model_read_coalesce_seconds: float = Field(
        default=0.2,
        ge=0,
        le=1.0,
        description=(
            "While the event loop is saturated, how long a model stream's next read may wait"
            " so that the tokens arriving meanwhile come in one read (one event, one send):"
            " under load a client gets the answer in pieces up to this far apart, and the CPU"
            " goes to more streams instead of more wake-ups. A server with room adds no delay;"
            " 0 reads every stream as its data arrives."
        ),
    )

    # MCP servers whose tools agents may use:
    # {"calc": {"url": "http://127.0.0.1:9000/mcp", "headers": {}}, "fs": {"command": "..."}}
    mcp_servers: dict[str, McpServerConfig] = Field(default_factory=dict)

    @field_validator("mcp_servers")
    @classmethod
    def _mcp_server_names(cls, value: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in value:
            if not re.fullmatch(MCP_SERVER_NAME_PATTERN, name):
                raise ValueError(f"invalid MCP server name {name!r} (letters, digits, _ and -)")
        return value

    # Identity: who may call /v1 and /mcp, and as which tenant
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated operator keys: admin of the `default` tenant, and the API keys"
            " of every tenant to manage."
        ),
    )
    auth_disabled: bool = Field(
        default=False,
        description=(
            "Serve every client as the operator, without credentials. Without it, and with no"
            " API_KEYS, JWT_* or stored key, only loopback clients are served (as the operator)."
        ),
    )
    jwt_secret: SecretStr | None = Field(default=None, description="Accept HS256 JWTs signed so.")
    jwt_jwks_url: str | None = Field(
        default=None, description="Accept RS256/ES256 JWTs signed by the keys published here."
    )
    jwt_audience: str | None = Field(
        default=None, description="When set, a JWT must carry this `aud`."
    )
    jwt_issuer: str | None = Field(
        default=None, description="When set, a JWT must carry this `iss`."
    )
    jwt_tenant_claim: str = Field(
        default="tenant_id", min_length=1, description="The JWT claim naming the tenant."
    )
    jwt_leeway_seconds: float = Field(
        default=5.0, ge=0, le=300, description="Clock skew allowed on `exp`, `nbf` and `iat`."
    )
    tenant_max_active_runs: int | None = Field(
        default=None,
        ge=1,
        description=(
            "A tenant's queued and running runs, counted across replicas; one more is 429."
            " Unset: unlimited."
        ),
    )

    # Database pool (PostgreSQL)
    db_pool_size: int = Field(default=30, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)

    @field_validator("tool_modules", "cors_origins", "api_keys", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("model_providers")
    @classmethod
    def _profile_names(cls, value: dict[str, ProviderProfile]) -> dict[str, ProviderProfile]:
        for name in value:
            if name in {"openai", "anthropic", "test"} or not name or ":" in name:
                raise ValueError(f"invalid provider name {name!r}")
        return value

    # Process
    gc_threshold: Annotated[tuple[int, int, int] | None, NoDecode] = Field(
        default=(50_000, 20, 10),
        description=(
            "The garbage collector's thresholds (gen0,gen1,gen2) while serving, with the objects"
            " made at start-up frozen out of collection; `off` keeps Python's defaults."
        ),
    )

    gc_objects_per_run: int = Field(
        default=500,
        ge=0,
        description=(
            "Added to the youngest generation's threshold per run in flight or being created, so"
            " that a burst of live runs does not set off young collections that find"
            " nothing to free; 0 keeps the threshold fixed."
        ),
    )

    @field_validator("gc_threshold", mode="before")
    @classmethod
    def _gc_threshold(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip().lower() in {"off", "none", "default"}:
                return None
            return tuple(_split_csv(value))
        return value

    @field_validator("gc_threshold")
    @classmethod
    def _positive_gen0(cls, value: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError("each threshold must be at least 1 (or `off`)")
        return value

    # Runs
    lease_seconds: float = Field(
        default=15.0, gt=0, description="A worker that stops renewing for this long is lost."
    )
    sweep_interval: float = Field(
        default=2.0, gt=0, description="How often queued and orphaned runs are looked for."
    )
    max_concurrent_runs: int = Field(
        default=1024, ge=1, description="Runs this process executes at once; more wait queued."
    )
    max_run_attempts: int = Field(
        default=3, ge=1, description="Workers a run may lose before it ends as worker_lost."
    )
    sse_ping_seconds: float = Field(
        default=15.0, gt=0, description="An event stream idle this long gets a `: ping` comment."
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class BadSettings(SystemExit):
    """Start-up stops here when the environment holds a bad setting."""


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"]).upper() or "settings"
        parts.append(f"{name}: {error['msg']}")
    return "invalid settings: " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; on a bad value exit with one clear line on stderr."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        message = describe_validation_error(exc)
    except SettingsError as exc:
        # Raised for values that are not even parseable, such as invalid JSON.
        field = str(exc).split('"')[1] if '"' in str(exc) else "settings"
        message = f"invalid settings: {field.upper()}: cannot parse the value"
    print(f"agentd: {message}", file=sys.stderr)
    raise BadSettings(2)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
