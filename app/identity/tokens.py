"""JWTs as credentials (PyJWT): HS256 with `JWT_SECRET`, RS256/ES256 with the
keys published at `JWT_JWKS_URL`.

A token must carry `exp` (honoured with `JWT_LEEWAY_SECONDS` of clock skew),
and `aud` / `iss` equal to `JWT_AUDIENCE` / `JWT_ISSUER` when those are set.
`sub` is the user id (none: the token acts for its whole tenant), the claim
named by `JWT_TENANT_CLAIM` the tenant, `scope` (space-separated) the scopes.
Each algorithm is accepted only with its own kind of key, so a token cannot
choose how it is checked.

PyJWKClient caches the key set and fetches it again for a key id it does not
know (not more often than its cooldown allows); it fetches with blocking I/O,
so keys are looked up in a worker thread. A verified token's principal is
cached until it expires (at most a minute), so a client sending the same token
again costs no signature check.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from typing import Any

import jwt

from app.config import Settings
from app.identity.schemas import TENANT_ID_PATTERN
from app.principal import Principal

HMAC_ALGORITHMS = ("HS256",)
KEY_SET_ALGORITHMS = ("RS256", "ES256")
CACHE_SECONDS = 60.0
CACHE_SIZE = 10_000
_TENANT = re.compile(TENANT_ID_PATTERN)


class InvalidToken(Exception):
    """The token is not accepted; the message says why (safe to show)."""


class TokenVerifier:
    """`key_set_lifespan`: how long the published keys are used before they are
    fetched again; `key_set_cooldown`: how soon after a fetch a token with an
    unknown key id may make the keys be fetched again (a rotated key waits at most
    that long)."""

    def __init__(
        self, settings: Settings, key_set_lifespan: float = 300, key_set_cooldown: float = 10
    ) -> None:
        self._secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._key_set = (
            jwt.PyJWKClient(
                settings.jwt_jwks_url,
                lifespan=key_set_lifespan,
                cooldown_duration=key_set_cooldown,
                timeout=10,
            )
            if settings.jwt_jwks_url
            else None
        )
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._tenant_claim = settings.jwt_tenant_claim
        self._leeway = settings.jwt_leeway_seconds
        self._required = ["exp"] + ["aud"] * bool(self._audience) + ["iss"] * bool(self._issuer)
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    async def principal(self, token: str) -> Principal:
        """The token's principal; InvalidToken when it is not accepted."""
        cached = self._verified.get(token)
        if cached is not None and cached[0] > time.time():
            return cached[1]
        claims = await self._claims(token)
        found = self._principal_of(claims)
        until = min(float(claims["exp"]) + self._leeway, time.time() + CACHE_SECONDS)
        self._verified[token] = (until, found)
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return found

    async def _claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("The token is not a JWT.") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm in HMAC_ALGORITHMS and self._secret is not None:
            key = self._secret
        elif algorithm in KEY_SET_ALGORITHMS and self._key_set is not None:
            key = await self._signing_key(token, algorithm)
        else:
            raise InvalidToken(f"Tokens signed with {algorithm!r} are not accepted.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": self._required, "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The token has expired.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"The token has no `{exc.claim}` claim.") from None
        except (jwt.PyJWTError, TypeError, ValueError) as exc:  # PyJWT raises all three
            raise InvalidToken(f"The token is not valid ({type(exc).__name__}).") from None
        return claims

    async def _signing_key(self, token: str, algorithm: str) -> Any:
        assert self._key_set is not None
        try:
            found = await asyncio.to_thread(self._key_set.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError:
            raise InvalidToken("The signing keys cannot be fetched now.") from None
        except jwt.PyJWTError:
            raise InvalidToken("No published signing key matches the token.") from None
        if found.algorithm_name != algorithm:  # the key named is of another kind
            raise InvalidToken(f"The token is not valid (its key is not an {algorithm} key).")
        return found.key

    def _principal_of(self, claims: dict[str, Any]) -> Principal:
        tenant = claims.get(self._tenant_claim)
        if not isinstance(tenant, str) or not _TENANT.match(tenant):
            raise InvalidToken(f"The token's `{self._tenant_claim}` claim names no valid tenant.")
        user = claims.get("sub")
        if user is not None and (not isinstance(user, str) or not 0 < len(user) <= 128):
            raise InvalidToken("The token's `sub` claim is not a user id.")
        scope = claims.get("scope", "")
        scopes = scope.split() if isinstance(scope, str) else scope
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise InvalidToken("The token's `scope` claim is not a list of scopes.")
        return Principal(tenant, user, frozenset(scopes))
