"""The engine's `SummaryStore` over the sessions table: one short transaction
each, on the session of the run's tenant (the principal the worker executes the
run as, taken from the run's row; session ids are unique per tenant only)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import principal
from app.db import utcnow
from app.engine.summary import SessionSummary
from app.tables import Session


class StoredSummaries:
    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self.maker = maker

    async def save_summary(self, session_id: str, summary: SessionSummary) -> SessionSummary:
        now = utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        stored = summary.model_copy(update={"updated_at": now})
        async with self.maker() as session, session.begin():
            await session.execute(
                update(Session)
                .where(Session.tenant_id == principal.tenant(), Session.id == session_id)
                .values(summary=stored.model_dump(mode="json"))
            )
        return stored
