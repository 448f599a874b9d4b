"""SQLAlchemy's aiosqlite adapter and aiosqlite: one trip to the SQLite thread per statement.

aiosqlite runs every sqlite3 call on its own thread; SQLAlchemy's adapter makes
one call per cursor step (open the cursor, execute, fetch the rows, close), so
each statement costs three or four round trips between the event loop and that
thread, each a queue hand-off and a loop wake-up. The cursor here does the
whole statement in one call on the thread (the way aiosqlite's own
`execute_fetchall` does) and keeps what SQLAlchemy reads afterwards
(`description`, `rowcount`, `lastrowid`, the rows). The connection saves two
more trips per transaction: its `BEGIN` goes with the transaction's first
statement (`defer_begin`), and the pool's rollback on return is skipped when
SQLite has no transaction open and no call of ours is still on the thread.
Nothing else changes: the same dialect, transactions and errors.

The blocking-run bar on SQLite needs the trips it saves. It subclasses
SQLAlchemy's private adapter classes (their `_cursor_cls`, `_execute_mutex`,
`_connection`, the cursor's `_execute_async`, `_executemany_async`,
`_async_soft_close`, `_rows`, `_soft_closed_memoized`) and calls aiosqlite's
private `Connection._execute` and `_conn`. Outside the versions below `dbapi()`
answers None, and the engine uses SQLAlchemy's own adapter.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

from app.compat import supported

# The versions checked (tests/compat/test_sqlite.py).
SQLALCHEMY = ("2.1", "2.2")
AIOSQLITE = ("0.20", "0.23")
ENABLED = supported(
    "sqlalchemy", *SQLALCHEMY, what="the aiosqlite adapter's private cursor steps"
) and supported("aiosqlite", *AIOSQLITE, what="aiosqlite.Connection._execute")

Outcome = tuple[Any, int, int | None, list[Any] | None]


def _statement(
    conn: sqlite3.Connection, begin: str | None, operation: str, parameters: Any, many: bool
) -> Outcome:
    """On the SQLite thread: begin the transaction if one is due, run one
    statement (`many`: once per parameter set) and read all SQLAlchemy needs."""
    if begin is not None:
        conn.execute(begin).close()
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor with no aiosqlite cursor behind it: each `execute` is one call on
    the SQLite thread, and the outcome is kept here."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

    def __init__(self, adapt_connection: Any) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return  # nothing open: the rows are already here

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        connection = cast("OneTripConnection", self._adapt_connection)
        async with connection._execute_mutex:
            outcome = await connection.trip(operation, parameters, many=False)
        self._keep(outcome)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        connection = cast("OneTripConnection", self._adapt_connection)
        async with connection._execute_mutex:
            outcome = await connection.trip(operation, seq_of_parameters, many=True)
        self._keep(outcome)

    def _keep(self, outcome: Outcome) -> None:
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows or ())

    def nextset(self) -> None:
        return None  # sqlite3 has one result set per statement

    def setinputsizes(self, *inputsizes: Any) -> None:
        return None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_begin", "_sent", "_done")
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._begin: str | None = None  # due before the next statement
        self._sent = 0  # calls handed to the thread (counted on the loop's thread)
        self._done = 0  # calls the thread finished (counted on the thread)

    def defer_begin(self, statement: str = "BEGIN") -> None:
        """Open a transaction with `statement` on the next statement's trip."""
        self._begin = statement

    async def trip(self, operation: Any, parameters: Any, *, many: bool) -> Outcome:
        """One statement on the SQLite thread, with the BEGIN that is due."""
        begin, self._begin = self._begin, None

        def call() -> Outcome:
            try:
                return _statement(self._connection._conn, begin, operation, parameters, many)
            finally:
                self._done += 1

        self._sent += 1
        return await self._connection._execute(call)  # type: ignore[no-any-return]

    def commit(self) -> None:
        if self._begin is not None:
            self._begin = None  # nothing ran since BEGIN was due: nothing to commit
            if self._settled():
                return
        super().commit()

    def rollback(self) -> None:
        self._begin = None
        if self._settled():
            return  # nothing to undo: the pool's reset after a committed transaction
        super().rollback()

    def _settled(self) -> bool:
        """No transaction open in SQLite, and none of our calls still on the thread."""
        conn = self._connection._connection  # None once closed (`_conn` would raise)
        return conn is not None and self._sent == self._done and not conn.in_transaction


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DBAPI module SQLAlchemy builds, wrapping connections in
    `OneTripConnection`. Pass as `module=` to `create_async_engine`."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDBAPI | None:
    """The DBAPI module for `create_async_engine(..., module=dbapi())`; None (SQLAlchemy's
    own) outside the versions checked."""
    return OneTripDBAPI(aiosqlite, sqlite3) if ENABLED else None
