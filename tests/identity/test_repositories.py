"""The sessions repository keeps a principal to its reach by itself, writes
included: a route that forgot to read the session first would still change
nothing of another tenant's or another user's."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.principal import Principal, acting_as
from app.sessions import repository
from app.tables import Session

U1 = Principal("acme", "u1", frozenset({"sessions:write"}))
U2 = Principal("acme", "u2", frozenset({"sessions:write"}))
GLOBEX = Principal("globex", None, frozenset({"sessions:write"}))
ACME = Principal("acme", None, frozenset({"sessions:write"}))


async def test_session_writes_reach_only_the_principals_sessions(
    db_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    now = utcnow()
    async with db_sessionmaker() as db, db.begin():
        db.add(Session(tenant_id="acme", id="s", user_id="u1", state={"v": 1},
                       created_at=now, updated_at=now))  # fmt: skip
    for stranger in (U2, GLOBEX):
        with acting_as(stranger):
            async with db_sessionmaker() as db, db.begin():
                if stranger.tenant_id == "acme":  # asked of a session of its tenant
                    assert not await repository.reachable(db, "s")
                assert await repository.get_session(db, "s") is None
                await repository.merge_session_state(db, "s", {"v": 2})
                await repository.delete_session(db, "s")
    async with db_sessionmaker() as db:
        stored = (await db.scalars(select(Session))).all()
    assert [(row.id, row.state) for row in stored] == [("s", {"v": 1})]
    for owner in (U1, ACME):
        with acting_as(owner):
            async with db_sessionmaker() as db, db.begin():
                assert await repository.reachable(db, "s")
                assert await repository.get_session(db, "s") is not None
    with acting_as(U1):
        async with db_sessionmaker() as db, db.begin():
            await repository.merge_session_state(db, "s", {"v": 3})
        async with db_sessionmaker() as db:
            found = await repository.get_session(db, "s")
            assert found is not None and found.state == {"v": 3}
