"""Stored API keys as credentials: `agk_` and 256 random bits, kept only as
their SHA-256 (a key of that entropy needs no slow hash), found by that hash,
so no comparison of secrets takes a time that depends on them.

What a lookup found is cached for `ttl` seconds. A key deleted on any replica
is forgotten on every replica as soon as its notice arrives (the `api_key`
control message, sent in the deleting transaction); the TTL bounds the time a
missed notice could keep it alive. Whether any key is stored at all (which
decides the secure default) is cached the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.identity import repository
from app.principal import Principal

PREFIX = "agk_"
EVERY_KEY = "*"  # the `api_key` notice that means: forget every key
CACHE_SIZE = 10_000


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class StoredKeys:
    """Principals of stored keys, cached briefly; revocations heard from every replica."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], ttl: float = 1.0) -> None:
        self._maker = maker
        self.ttl = ttl
        # hash -> (until, the key's principal or None for no such key)
        self._found: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[Principal | None]] = {}
        self._any: tuple[float, bool] | None = None
        self._any_loading: asyncio.Future[bool] | None = None
        # Counts the notices: a read begun before one stores nothing it found.
        self._generation = 0

    async def principal(self, key: str) -> Principal | None:
        """The principal of a stored key; None when no such key is stored."""
        digest = hash_key(key)
        cached = self._found.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        loading = self._loading.get(digest)
        if loading is None:  # one read for every request that missed meanwhile
            loading = asyncio.ensure_future(self._load(digest))
            self._loading[digest] = loading
            loading.add_done_callback(lambda done: self._loaded(digest, done))
        return await asyncio.shield(loading)

    async def _load(self, digest: str) -> Principal | None:
        generation = self._generation
        async with self._maker() as session:
            row = await repository.by_hash(session, digest)
        found = None
        if row is not None:
            found = Principal(row.tenant_id, row.user_id, frozenset(row.scopes))
        if generation != self._generation:
            return found
        self._found[digest] = (time.monotonic() + self.ttl, found)
        self._found.move_to_end(digest)
        if len(self._found) > CACHE_SIZE:
            self._found.popitem(last=False)
        return found

    def _loaded(self, digest: str, loading: asyncio.Future[Principal | None]) -> None:
        if self._loading.get(digest) is loading:
            del self._loading[digest]

    async def any_stored(self) -> bool:
        cached = self._any
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        loading = self._any_loading
        if loading is None:  # one read for every request that missed meanwhile
            loading = self._any_loading = asyncio.ensure_future(self._load_any())
            loading.add_done_callback(self._loaded_any)
        return await asyncio.shield(loading)

    async def _load_any(self) -> bool:
        generation = self._generation
        async with self._maker() as session:
            found = await repository.any_stored(session)
        if generation == self._generation:
            self._any = (time.monotonic() + self.ttl, found)
        return found

    def _loaded_any(self, loading: asyncio.Future[bool]) -> None:
        if self._any_loading is loading:
            self._any_loading = None

    def on_control(self, kind: str, payload: str) -> None:
        """A Notifier control handler: `api_key:<hash>` (deleted), `api_key:`
        (created) or `api_key:*` (anything may have changed)."""
        if kind != "api_key":
            return
        # Reads under way may have read before the change: later requests read anew.
        self._generation += 1
        self._any, self._any_loading = None, None
        self._loading.clear()
        if payload == EVERY_KEY:
            self._found.clear()
        elif payload:
            self._found.pop(payload, None)
