"""The stored keys' cache: requests that miss it together cost one read, and a
read begun before a key changed stores nothing it found."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from app.identity import keys, repository


class Reads:
    """Stands in for the database: each read answers what `answer` was when it
    began, once its own event (`ends[i]`) is set."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.ends: list[asyncio.Event] = []

    @asynccontextmanager
    async def maker(self) -> AsyncIterator[None]:
        yield None

    async def read(self, session: object, *args: object) -> Any:
        answer, end = self.answer, asyncio.Event()
        self.ends.append(end)
        await end.wait()
        return answer

    async def begun(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.ends) < count:  # noqa: ASYNC110 (reads begin in other tasks)
                await asyncio.sleep(0)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    found = Reads(True)
    monkeypatch.setattr(repository, "any_stored", found.read)
    return found


async def test_requests_that_miss_together_cost_one_read(reads: Reads) -> None:
    stored = keys.StoredKeys(reads.maker)  # type: ignore[arg-type]
    asking = [asyncio.ensure_future(stored.any_stored()) for _ in range(20)]
    await reads.begun(1)
    await asyncio.sleep(0.01)
    reads.ends[0].set()
    assert await asyncio.wait_for(asyncio.gather(*asking), 5) == [True] * 20
    assert await stored.any_stored() is True  # cached now
    assert len(reads.ends) == 1


async def test_a_read_begun_before_a_notice_is_not_kept(reads: Reads) -> None:
    stored = keys.StoredKeys(reads.maker)  # type: ignore[arg-type]
    reads.answer = False
    early = asyncio.ensure_future(stored.any_stored())
    await reads.begun(1)
    stored.on_control("api_key", "")  # a key was created meanwhile
    reads.answer = True
    later = asyncio.ensure_future(stored.any_stored())  # reads anew
    await reads.begun(2)
    reads.ends[1].set()
    assert await asyncio.wait_for(later, 5) is True
    reads.ends[0].set()  # the early read ends last, with what it saw before
    assert await asyncio.wait_for(early, 5) is False
    assert await stored.any_stored() is True  # the early read was not kept
    assert len(reads.ends) == 2
