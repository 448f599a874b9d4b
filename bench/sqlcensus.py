"""agentd with a SQL census, for `python -m bench --sql-census`.

The same app (`app.main.create_app()`), plus SQLAlchemy engine events that
count every statement and commit, and the time each statement took, by kind
("INSERT run_events", "SELECT runs", ...) and by the agentd function that
issued it: SQLAlchemy runs its sync code in a greenlet, so the caller is found
through the parent greenlet's frame (sampling profilers lose it there).
`GET /__bench/sql` returns the counters; the harness turns them into
statements per run. The counting costs some CPU, so the figures measured with
it are not the benchmark's.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import greenlet  # type: ignore[import-untyped]
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.main import create_app

STATEMENTS: Counter[str] = Counter()
ORIGINS: Counter[str] = Counter()
COMMITS: Counter[str] = Counter()
MILLIS: Counter[str] = Counter()  # wall time from issuing a statement to its result
TABLE = re.compile(r"\b(?:INTO|UPDATE|FROM)\s+\"?(\w+)", re.IGNORECASE)


def kind(sql: str) -> str:
    verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    table = TABLE.search(sql)
    return f"{verb} {table.group(1)}" if table else verb


def origin() -> str:
    """The innermost agentd function (outside app/db.py) awaiting this statement."""
    current = greenlet.getcurrent()
    frame = current.parent.gr_frame if current.parent is not None else None
    while frame is not None:
        path = frame.f_code.co_filename
        if "/app/" in path and not path.endswith("/app/db.py"):
            short = path.rsplit("/app/", 1)[1]
            return f"{frame.f_code.co_qualname} (app/{short})"
        frame = frame.f_back
    return "?"


@event.listens_for(Engine, "before_cursor_execute")
def _statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    where = f"{kind(statement)} <- {origin()}"
    STATEMENTS[kind(statement)] += 1
    ORIGINS[where] += 1
    conn.info["census"] = (where, time.perf_counter())


@event.listens_for(Engine, "after_cursor_execute")
def _done(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    where, started = conn.info.pop("census", ("?", time.perf_counter()))
    MILLIS[where] += (time.perf_counter() - started) * 1000


@event.listens_for(Engine, "commit")
def _commit(conn: Any) -> None:
    COMMITS[origin()] += 1


app = create_app()


@app.get("/__bench/sql", include_in_schema=False)
async def census() -> dict[str, Any]:
    return {"statements": STATEMENTS, "origins": ORIGINS, "commits": COMMITS, "millis": MILLIS}
