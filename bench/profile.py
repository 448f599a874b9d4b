"""Summarise a py-spy `--format raw` profile (collapsed stacks): where the
samples land by package (self time), and the hottest functions, self and
inclusive. `python -m bench.profile bench/results/profile-sqlite-W2-c32.txt`.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
PACKAGES: tuple[tuple[str, str], ...] = (
    ("/app/engine/", "app.engine"),
    ("/app/worker/", "app.worker"),
    ("/app/runs/", "app.runs"),
    ("/app/", "app (other)"),
    ("/sqlalchemy/", "sqlalchemy"),
    ("sqlalchemy generated", "sqlalchemy"),
    ("/asyncpg/", "asyncpg"),
    ("/aiosqlite/", "aiosqlite"),
    ("sqlite3", "sqlite3"),
    ("/httpx2/", "httpx2"),
    ("/httpcore", "httpcore"),
    ("/h11/", "h11"),
    ("/openai/", "openai"),
    ("/pydantic", "pydantic"),
    ("/sse_starlette/", "sse_starlette"),
    ("/fastapi/", "fastapi"),
    ("/starlette/", "starlette"),
    ("/uvicorn/", "uvicorn"),
    ("/anyio/", "anyio"),
    ("/uvloop/", "uvloop"),
    ("/asyncio/", "asyncio"),
    ("/json/", "json"),
    ("/orjson", "orjson"),
    ("/logging/", "logging"),
    ("/alembic/", "alembic"),
    ("/bench/", "bench"),
    ("/typing", "typing"),
    ("/inspect.py", "inspect"),
    ("/enum.py", "enum"),
    ("/uuid.py", "uuid"),
    ("/datetime.py", "datetime"),
)
GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("database: SQLAlchemy + driver", frozenset({"sqlalchemy", "aiosqlite", "sqlite3", "asyncpg"})),
    ("event loop (uvloop C code under asyncio.Runner, asyncio)", frozenset({"asyncio", "uvloop"})),
    (
        "model client: openai + httpx2 + httpcore + h11",
        frozenset({"openai", "httpx2", "httpcore", "h11"}),
    ),
    (
        "HTTP serving: uvicorn + starlette + fastapi + sse",
        frozenset({"uvicorn", "starlette", "fastapi", "sse_starlette"}),
    ),
    (
        "agentd's own code (app/)",
        frozenset({"app.engine", "app.worker", "app.runs", "app (other)"}),
    ),
    ("pydantic", frozenset({"pydantic"})),
    ("anyio (shared by starlette and httpx2)", frozenset({"anyio"})),
)
# Stack roots (the event loop, the CLI) that every sample shares: left out of
# the inclusive list.
ROOTS = {"asyncio", "uvloop", "other", "typing"}
ROOT_FILES = (
    "runpy",
    "click/",
    "uvicorn/__main__.py",
    "uvicorn/main.py",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
)


# Leaves of a thread waiting for work (a thread pool's queue, aiosqlite's), which
# the blocking mode samples as if busy: left out of the totals.
IDLE_LEAVES = (
    ("_worker", "concurrent/futures/thread.py"),
    ("get", "queue.py"),
    ("wait", "threading.py"),
)


def idle(leaf: tuple[str, str]) -> bool:
    func, file = leaf
    return any(func == name and file.endswith(tail) for name, tail in IDLE_LEAVES)


def package(path: str) -> str:
    path = "/" + path  # py-spy shows site-packages paths relative: "uvicorn/server.py"
    for needle, name in PACKAGES:
        if needle in path:
            return name
    return "other"


def frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        match = FRAME.match(frame.strip())
        if match:
            out.append((match["func"], match["file"]))
        else:
            out.append((frame.strip(), ""))
    return out


def _is_root(path: str) -> bool:
    return package(path) in ROOTS or any(root in path for root in ROOT_FILES)


def short(func: str, path: str) -> str:
    tail = "/".join(Path(path).parts[-2:]) if path else ""
    return f"{func} ({tail})" if tail else func


def summarize(path: Path, top: int = 20) -> str:
    self_pkg: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    incl_pkg: Counter[str] = Counter()
    total = idle_samples = 0
    for line in path.read_text(errors="replace").split("\n"):
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        stack_frames = frames(stack)
        if idle(stack_frames[-1]):
            idle_samples += n
            continue
        total += n
        func, file = stack_frames[-1]
        self_pkg[package(file)] += n
        self_fn[short(func, file)] += n
        for name in {short(f, p) for f, p in stack_frames if p and not _is_root(p)}:
            incl_fn[name] += n
        for name in {package(p) for _, p in stack_frames if p and not _is_root(p)}:
            incl_pkg[name] += n
    if not total:
        return f"{path}: no samples"
    lines = [f"{path}: {total} samples ({idle_samples} of idle threads left out)"]
    lines += ["", "self time by group:"]
    grouped: Counter[str] = Counter()
    for name, n in self_pkg.items():
        group = next((g for g, members in GROUPS if name in members), "other")
        grouped[group] += n
    lines += [f"  {n / total:6.1%}  {name}" for name, n in grouped.most_common()]
    lines += ["", "self time by package:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in self_pkg.most_common(top)]
    lines += ["", "samples whose stack passes through a package:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in incl_pkg.most_common(top)]
    lines += ["", "hottest functions, self:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in self_fn.most_common(top)]
    lines += ["", "hottest functions, inclusive:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in incl_fn.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("profile", type=Path, help="a py-spy --format raw file")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarize(args.profile, args.top))


if __name__ == "__main__":
    main()
