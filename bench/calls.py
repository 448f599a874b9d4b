"""Python function calls per run, counted instead of timed: `python -m bench.calls`.

A timed benchmark needs a quiet machine; a count of the function calls a run
costs the server does not. This serves agentd in this process (uvicorn on
127.0.0.1, the same app and loop as `make run`), sends runs of one workload
from a client thread, and counts with cProfile every Python call the server's
thread makes while the measured runs go through (the SQLite driver's own
thread and the C inside SQLite or asyncpg are not counted). One run at a time
by default, so each run is created alone and the count repeats from one
invocation to the next.

    python -m bench.calls --point W2-c32 --out /tmp/native.json
    python -m bench.calls --point W2-c32 --auth key --out /tmp/keyed.json
    python -m bench.calls --diff /tmp/native.json /tmp/keyed.json

`--diff A B` prints both totals and the functions whose calls per run differ
most. `--cpu-only` leaves the profiler off and reports only the CPU time of
the server's thread per run: timed, so it moves with the host's load, but
less than runs/s does (the client runs in another thread). The `-c32` of a
point names its workload; `--concurrency` is separate.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import procs
from bench.client import Connection
from bench.runner import OPERATOR_KEY, tenant_key
from bench.workloads import POINTS, TARGETS, agent_definitions, agentd_wire


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.calls", description=__doc__)
    parser.add_argument("--point", default="W1-c32", help="the workload, as a point of `bench`")
    parser.add_argument("--target", default="sqlite", choices=("sqlite", "pg"))
    parser.add_argument("--auth", default="none", choices=("none", "key"))
    parser.add_argument("--runs", type=int, default=200, help="measured runs")
    parser.add_argument("--warm", type=int, default=50, help="runs before counting")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--top", type=int, default=30, help="functions listed")
    parser.add_argument("--out", type=Path, help="write the counts as JSON here")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="no profiler: only the CPU time the server's thread spends per run",
    )
    parser.add_argument("--diff", nargs=2, type=Path, metavar=("A", "B"))
    parser.add_argument(
        "--by", choices=("calls", "time"), default="calls", help="what --diff compares"
    )
    return parser.parse_args(argv)


def serve_env(args: argparse.Namespace, fake_port: int, tmp: Path) -> str | None:
    """Set the server's environment before the app is imported; returns the
    PostgreSQL database to drop afterwards, if one was made."""
    os.environ.update(
        {
            "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
            "OPENAI_API_KEY": "x",
            "LOG_LEVEL": "warning",
            "SEED_DEMO_AGENT": "false",
            "API_KEYS": OPERATOR_KEY if args.auth == "key" else "",
        }
    )
    if args.target == "sqlite":
        os.environ["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp}/calls.db"
        return None
    name = f"agentd_calls_{os.getpid()}"
    asyncio.run(procs.create_database(args.pg_admin, name))
    base = args.pg_admin.rsplit("/", 1)[0].split("://", 1)[1]
    os.environ["DATABASE_URL"] = f"postgresql+asyncpg://{base}/{name}"
    return name


@dataclass
class Handshake:
    """The client thread's steps, seen by the server's loop."""

    warmed: threading.Event = field(default_factory=threading.Event)  # or failed
    counting: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)  # or failed
    results: dict[str, Any] = field(default_factory=dict)


def client_thread(port: int, args: argparse.Namespace, key: str, steps: Handshake) -> None:
    """Create the agents, send the warm-up runs, wait for the server to count,
    then send the measured runs."""
    done = steps.results
    point = next(p for p in POINTS if p.key == args.point)
    wire = agentd_wire(point, port, f"calls{os.getpid()}", key)

    async def send(first: int, count: int) -> int:
        failures = 0
        numbers = iter(range(first, first + count))

        async def worker() -> None:
            nonlocal failures
            conn = await Connection.open("127.0.0.1", port)
            for i in numbers:
                if conn.closed or conn.will_close:
                    conn = await Connection.open("127.0.0.1", port)
                reply = await conn.request(wire.make(i), wire.marker)
                if wire.check(reply) is not None:
                    failures += 1
            conn.close()

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        return failures

    try:
        url = f"http://127.0.0.1:{port}/v1/agents"
        for body in agent_definitions():
            status, data = procs.http_json(url, body, key=key)
            if status != 201:
                raise RuntimeError(f"creating a bench agent failed: {status} {data[:300]!r}")
        done["warm_failures"] = asyncio.run(send(0, args.warm))
        steps.warmed.set()
        steps.counting.wait()
        cpu = time.thread_time()
        done["failures"] = asyncio.run(send(args.warm, args.runs))
        done["client_cpu"] = time.thread_time() - cpu
    except Exception as exc:  # reported by the server side
        done["error"] = repr(exc)
    finally:
        steps.warmed.set()
        steps.finished.set()


async def serve_and_count(args: argparse.Namespace) -> dict[str, Any]:
    import uvicorn

    from app.main import create_app

    port = procs.free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.01)
    key = await asyncio.to_thread(tenant_key, port) if args.auth == "key" else ""
    steps = Handshake()
    done = steps.results
    thread = threading.Thread(target=client_thread, args=(port, args, key, steps))
    thread.start()
    await asyncio.to_thread(steps.warmed.wait)
    profile = cProfile.Profile()
    cpu, process_cpu = time.thread_time(), time.process_time()
    if not args.cpu_only:
        profile.enable()
    steps.counting.set()
    await asyncio.to_thread(steps.finished.wait)
    profile.disable()
    cpu, process_cpu = time.thread_time() - cpu, time.process_time() - process_cpu
    thread.join()
    server.should_exit = True
    await serving
    if "error" in done:
        raise RuntimeError(done["error"])
    functions: dict[str, float] = {}
    own: dict[str, float] = {}  # ms of the function's own code per run, under the profiler
    stats = {} if args.cpu_only else pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (file, line, name), (_, calls, tottime, *_rest) in stats.items():
        where = file.split("site-packages/")[-1].split("/work/")[-1]
        functions[f"{name} ({where}:{line})"] = calls / args.runs
        own[f"{name} ({where}:{line})"] = tottime * 1000 / args.runs
    return {
        "point": args.point,
        "target": args.target,
        "auth": args.auth,
        "concurrency": args.concurrency,
        "runs": args.runs,
        "failures": done.get("failures"),
        "calls_per_run": sum(functions.values()),
        "thread_cpu_ms_per_run": cpu * 1000 / args.runs,
        # The SQLite driver's thread, mostly: the process less the loop's and the client's.
        "other_cpu_ms_per_run": (process_cpu - cpu - done["client_cpu"]) * 1000 / args.runs,
        "functions": dict(sorted(functions.items(), key=lambda kv: -kv[1])),
        "own_ms": dict(sorted(own.items(), key=lambda kv: -kv[1])),
    }


def describe(result: dict[str, Any], top: int) -> str:
    lines = [
        f"{result['point']} on {result['target']}, auth {result['auth']}, "
        f"c{result['concurrency']}, {result['runs']} runs ({result['failures']} failed): "
        f"{result['calls_per_run']:,.0f} calls per run, "
        f"{result['thread_cpu_ms_per_run']:.2f} ms CPU per run"
        + ("" if result["functions"] else " (no profiler)")
        + ", "
        f"{result['other_cpu_ms_per_run']:.2f} ms in the server's other threads"
    ]
    lines += [f"  {n:9.1f}  {name}" for name, n in list(result["functions"].items())[:top]]
    return "\n".join(lines)


def diff(a: dict[str, Any], b: dict[str, Any], top: int, by: str = "functions") -> str:
    """The functions whose calls per run (`by="own_ms"`: own time per run) differ
    most between A and B."""
    a_by, b_by = _across_checkouts(a[by]), _across_checkouts(b[by])
    names = set(a_by) | set(b_by)
    delta = {n: b_by.get(n, 0.0) - a_by.get(n, 0.0) for n in names}
    lines = [
        f"A: {a['point']} {a['target']} auth {a['auth']}: {a['calls_per_run']:,.0f} calls per run, "
        f"other threads {a['other_cpu_ms_per_run']:.2f} ms",
        f"B: {b['point']} {b['target']} auth {b['auth']}: {b['calls_per_run']:,.0f} calls per run "
        f"({b['calls_per_run'] / a['calls_per_run']:.3f}x), "
        f"other threads {b['other_cpu_ms_per_run']:.2f} ms",
        ("calls" if by == "functions" else "own ms") + " per run, B - A, largest first:",
    ]
    for name, d in sorted(delta.items(), key=lambda kv: -abs(kv[1]))[:top]:
        if by == "functions" and abs(d) >= 0.05:
            lines.append(f"  {d:+9.1f}  {name}")
        elif by != "functions" and abs(d) >= 0.0005:
            lines.append(f"  {d:+9.3f}  {name}")
    return "\n".join(lines)


def _across_checkouts(counts: dict[str, float]) -> dict[str, float]:
    """The counts by function and file inside its checkout (`app/...`), line
    numbers left out: two checkouts' versions of a function then compare."""
    out: dict[str, float] = {}
    for name, value in counts.items():
        key = re.sub(r":\d+\)$", ")", re.sub(r"\((?:\S*/)?app/", "(app/", name))
        out[key] = out.get(key, 0.0) + value
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.diff:
        a, b = (orjson.loads(path.read_bytes()) for path in args.diff)
        print(diff(a, b, args.top, "functions" if args.by == "calls" else "own_ms"))
        return 0
    assert args.target in {t.key for t in TARGETS}
    with tempfile.TemporaryDirectory() as tmp:
        fake, fake_port = procs.start_fake(Path(tmp) / "fake.log", None)
        database = serve_env(args, fake_port, Path(tmp))
        try:
            from app.serving import new_event_loop

            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                result = runner.run(serve_and_count(args))
        finally:
            fake.stop()
            if database:
                asyncio.run(procs.drop_database(args.pg_admin, database))
    print(describe(result, args.top))
    if args.out:
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
