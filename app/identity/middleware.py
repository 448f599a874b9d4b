"""The identity middleware: every request to `/v1` or `/mcp` gets its principal
here, once, before routing (an unknown path is 401 without credentials, as a
known one), and the scope its route needs is checked (403 `forbidden`). The
principal then holds for everything the request does (`app.principal`).

Credentials, in order: `AUTH_DISABLED` serves everyone as the operator; with
nothing configured (no `API_KEYS`, no `JWT_*`, no stored key) loopback clients
are the operator, whatever they send, and every other client is refused;
otherwise `Authorization: Bearer` must carry an operator key, a stored key
(`agk_...`) or a JWT. Bad, expired or revoked credentials are 401 with
`WWW-Authenticate: Bearer`. A refusal is problem+json, or the error shape of
the matched route's own protocol (`ShapesErrors`: OpenAI's on its routes).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app import principal
from app.config import Settings
from app.errors import (
    AppError,
    Forbidden,
    ShapesErrors,
    Unauthorized,
    database_problem,
    problem_response,
)
from app.identity.keys import PREFIX, StoredKeys
from app.identity.scopes import AUTHENTICATED, ScopeMap
from app.principal import ADMIN, OPERATOR, Principal

if TYPE_CHECKING:
    # PyJWT loads cryptography (about 10 MB): imported only when tokens are configured.
    from app.identity.tokens import TokenVerifier

log = logging.getLogger("agentd.identity")

LOOPBACK = ("127.", "::1", "::ffff:127.")
SEND_A_KEY = "Send `Authorization: Bearer <key>` with an API key or a token."


def is_loopback(scope: Scope) -> bool:
    client = scope.get("client")
    host = client[0] if client else ""
    return bool(host) and (host == "localhost" or host.startswith(LOOPBACK))


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if kind.lower() == "bearer" and token else None
    return None


@dataclass
class Authenticator:
    """Credentials to principals, per the settings; `stored` is set once the
    database is up (the lifespan)."""

    operator_keys: list[bytes]
    tokens: TokenVerifier | None
    disabled: bool
    stored: StoredKeys | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        tokens = None
        if settings.jwt_secret or settings.jwt_jwks_url:
            from app.identity.tokens import TokenVerifier

            tokens = TokenVerifier(settings)
        return cls(
            operator_keys=[key.get_secret_value().encode() for key in settings.api_keys],
            tokens=tokens,
            disabled=settings.auth_disabled,
        )

    async def principal(self, scope: Scope) -> Principal:
        """The request's principal; Unauthorized otherwise."""
        if self.disabled:
            return OPERATOR
        if not self.operator_keys and self.tokens is None and not await self._any_stored():
            if is_loopback(scope):
                return OPERATOR
            raise Unauthorized(
                "No credentials are configured: only clients on this host are served."
            )
        token = bearer_token(scope)
        if token is None:
            raise Unauthorized(SEND_A_KEY)
        given = token.encode()
        # Compare with every key, so the time taken does not tell which one is near.
        if any([secrets.compare_digest(given, key) for key in self.operator_keys]):  # noqa: C419
            return OPERATOR
        if token.startswith(PREFIX) and self.stored is not None:
            found = await self.stored.principal(token)
            if found is None:
                raise Unauthorized("The API key is unknown or was revoked.")
            return found
        if self.tokens is not None and token.count(".") == 2:  # a JWT's three parts
            from app.identity.tokens import InvalidToken

            try:
                return await self.tokens.principal(token)
            except InvalidToken as exc:
                raise Unauthorized(str(exc)) from None
        raise Unauthorized("The credential is not valid.")

    async def _any_stored(self) -> bool:
        return self.stored is not None and await self.stored.any_stored()


def guarded(path: str) -> bool:
    """The paths behind credentials: `/v1` and the MCP endpoint."""
    return path.startswith(("/v1/", "/mcp")) or path == "/v1"


class IdentityMiddleware:
    """`shaped`: routes whose protocol answers errors in its own shape
    (`ShapesErrors`); a refusal on one of them is said in that shape."""

    def __init__(
        self, app: ASGIApp, authenticator: Authenticator, shaped: Sequence[BaseRoute] = ()
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.scopes = ScopeMap()
        self.shaped = [route for route in shaped if isinstance(route, ShapesErrors)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            who = await self.authenticator.principal(scope)
            self._check_scope(scope, who)
        except AppError as error:
            await self._refusal(scope, error, error.headers or {})(scope, receive, send)
            return
        except Exception as exc:  # stored keys are read from the database
            unavailable = database_problem(exc, f"{scope['method']} {scope['path']}")
            if unavailable is None:
                raise
            await self._refusal(scope, unavailable, {"Retry-After": "1"})(scope, receive, send)
            return
        token = principal.enter(who)
        try:
            await self.app(scope, receive, send)
        finally:
            principal.leave(token)

    def _refusal(self, scope: Scope, error: AppError, headers: Mapping[str, str]) -> Response:
        """problem+json, or the error shape of the matched route's own protocol."""
        for route in self.shaped:
            if route.matches(scope)[0] != Match.NONE:
                return cast(ShapesErrors, route).error_response(error, headers)
        return problem_response(error.to_problem(), error.status, headers)

    def _check_scope(self, scope: Scope, who: Principal) -> None:
        needed = self.scopes.scope_of(scope["method"], scope["path"])
        if needed is None:
            if not _routed(scope):
                return  # the router answers 404
            needed = ADMIN
        if needed != AUTHENTICATED and not who.allows(needed):
            raise Forbidden(f"This credential lacks the `{needed}` scope.")


def _routed(scope: Scope) -> bool:
    """Whether some route of the application matches the request's path."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", ())
    return any(route.matches(scope)[0] != Match.NONE for route in routes)
