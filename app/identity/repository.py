"""Database access for stored API keys. Never commits."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import principal
from app.tables import ApiKey


async def by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    """The key with this hash, in any tenant (authentication asks)."""
    found: ApiKey | None = await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))
    return found


async def any_stored(session: AsyncSession) -> bool:
    return await session.scalar(select(ApiKey.id).limit(1)) is not None


async def get(session: AsyncSession, key_id: str) -> ApiKey | None:
    """The key, if the current principal manages it: the operator every tenant's,
    a tenant admin its own tenant's."""
    statement = select(ApiKey).where(ApiKey.id == key_id)
    who = principal.current()
    if not who.is_admin:
        statement = statement.where(ApiKey.tenant_id == who.tenant_id)
    found: ApiKey | None = await session.scalar(statement)
    return found


async def list_page(
    session: AsyncSession, *, limit: int, after: str | None, tenant_id: str | None
) -> list[ApiKey]:
    """Keys the current principal manages, oldest first (ids sort by time)."""
    who = principal.current()
    statement = select(ApiKey).order_by(ApiKey.id).limit(limit)
    if not who.is_admin:
        statement = statement.where(ApiKey.tenant_id == who.tenant_id)
    if tenant_id is not None:
        statement = statement.where(ApiKey.tenant_id == tenant_id)
    if after is not None:
        statement = statement.where(ApiKey.id > after)
    return list(await session.scalars(statement))


async def delete_key(session: AsyncSession, key_id: str) -> None:
    await session.execute(delete(ApiKey).where(ApiKey.id == key_id))
