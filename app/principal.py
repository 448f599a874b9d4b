"""Who is asking: the principal of the current request (or run), and what it may do.

The identity middleware resolves a request's principal once, before routing,
and sets it here for the rest of the request; the worker sets a run's own
tenant while it executes that run. Repositories and the run service read it
to filter every domain query by tenant (and by user, for a principal bound to
one), so a route or protocol adapter never filters on its own and cannot
forget to. Reading it where none was set is a bug and fails: no code path sees
every tenant by accident.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from app.errors import Forbidden

DEFAULT_TENANT = "default"
ADMIN = "admin"
SCOPES = frozenset(
    {
        "agents:read",
        "agents:write",
        "runs:read",
        "runs:write",
        "sessions:read",
        "sessions:write",
        "memories:read",
        "memories:write",
        ADMIN,
    }
)


@dataclass(frozen=True, slots=True)
class Principal:
    """A tenant, maybe a user of it, and scopes. `is_admin` marks the operator
    (the `API_KEYS`, a loopback client while nothing is configured, or
    `AUTH_DISABLED`): every scope, and API keys of every tenant to manage."""

    tenant_id: str
    user_id: str | None = None
    scopes: frozenset[str] = frozenset()
    is_admin: bool = False

    def allows(self, scope: str) -> bool:
        return self.is_admin or ADMIN in self.scopes or scope in self.scopes

    def sees_user(self, user_id: str | None) -> bool:
        """Whether an object of `user_id` is within reach (its tenant being ours)."""
        return self.user_id is None or self.user_id == user_id


OPERATOR = Principal(DEFAULT_TENANT, None, SCOPES, is_admin=True)

_current: ContextVar[Principal] = ContextVar("agentd_principal")


def current() -> Principal:
    """The principal in effect; RuntimeError where none was set (a bug)."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("no principal in effect: domain data read outside a request") from None


def tenant() -> str:
    return current().tenant_id


def enter(principal: Principal) -> Token[Principal]:
    """Set the principal for the rest of this task (a task's context is its own),
    until `leave` with the token."""
    return _current.set(principal)


def leave(token: Token[Principal]) -> None:
    _current.reset(token)


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Set the principal for a block of code, then restore the one before."""
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)


def of_run(tenant_id: str) -> Principal:
    """The principal a run executes as: its tenant, every user's, every scope."""
    return Principal(tenant_id, None, SCOPES)


def within_reach(statement: Any, tenant_id: Any, user_id: Any) -> Any:
    """`statement` limited to the rows the current principal may see: those of its
    tenant (the `tenant_id` column), and of its user when it has one (`user_id`)."""
    who = current()
    statement = statement.where(tenant_id == who.tenant_id)
    if who.user_id is not None:
        statement = statement.where(user_id == who.user_id)
    return statement


def require(scope: str) -> Principal:
    """The current principal, if it has `scope` (403 `forbidden` otherwise)."""
    principal = current()
    if not principal.allows(scope):
        raise Forbidden(f"This credential lacks the `{scope}` scope.")
    return principal
