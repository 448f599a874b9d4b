"""`python -m bench`: parse the options, run the plan, print and save the table."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from pathlib import Path

import orjson

from bench.report import markdown
from bench.runner import Plan, run_plan
from bench.workloads import POINTS, TARGETS, with_baselines, with_keyed, with_traced

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark agentd (SQLite, PostgreSQL) against a bare FastAPI floor.",
    )
    parser.add_argument("--quick", action="store_true", help="short smoke pass (1 pass, few runs)")
    parser.add_argument("--passes", type=int, help="passes per point (default 3, 1 with --quick)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the length of steady passes"
    )
    parser.add_argument(
        "--targets",
        default=",".join(t.key for t in TARGETS),
        help="comma-separated, from: " + ", ".join(t.key for t in TARGETS),
    )
    parser.add_argument(
        "--points",
        default="all",
        help="comma-separated workloads (W1, ...: the points of the mode) or points: "
        + ", ".join(p.key for p in POINTS),
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    parser.add_argument(
        "--first-delay-ms", type=float, default=0.0, help="model delay before the first token"
    )
    parser.add_argument(
        "--server-cpu", type=int, default=0, help="core of the servers (-1: no pinning)"
    )
    parser.add_argument(
        "--client-cpu", type=int, default=1, help="core of load generator + fake (-1: none)"
    )
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL admin URL (a database is created and dropped)",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="raw",
        choices=["raw", "flamegraph", "speedscope"],
        help="add one uncounted pass per point under py-spy (default format: raw)",
    )
    parser.add_argument(
        "--sql-census",
        action="store_true",
        help="serve agentd with bench.sqlcensus: SQL statements per run (perturbs figures)",
    )
    parser.add_argument(
        "--baseline",
        action="append",
        type=Path,
        default=[],
        metavar="CHECKOUT",
        help="also serve agentd from this checkout (e.g. a `git worktree add` of another "
        "ref), with this virtualenv, next to each agentd target, interleaved; repeatable",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="measure, beside each agentd target, the same agentd exporting every run's spans"
        " (OTLP/HTTP) to a local sink on the client core",
    )
    parser.add_argument(
        "--auth",
        choices=["none", "key", "both"],
        default="none",
        help="agentd's credentials: none (loopback default), key (API_KEYS set; runs are"
        " sent with a stored key of a tenant), or both (each agentd target beside its"
        " keyed twin, measured interleaved)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.md/.json go")
    return parser.parse_args(argv)


def select(args: argparse.Namespace) -> Plan:
    keys = [k.strip() for k in args.targets.split(",") if k.strip()]
    unknown = set(keys) - {t.key for t in TARGETS}
    if unknown:
        sys.exit(f"unknown targets: {', '.join(sorted(unknown))}")
    wanted = [w.strip() for w in args.points.split(",") if w.strip()]
    points = [
        p
        for p in POINTS
        if p.key in wanted
        or (("all" in wanted or p.workload in wanted) and (p.quick if args.quick else p.full))
    ]
    if not points:
        sys.exit(f"no workload point matches {args.points!r}")
    for root in args.baseline:
        if not (root / "app" / "main.py").is_file():
            sys.exit(f"--baseline {root}: not an agentd checkout (no app/main.py)")
    roots = [root.resolve() for root in args.baseline]
    two = (os.cpu_count() or 1) >= 2
    return Plan(
        targets=with_keyed(
            with_traced(with_baselines([t for t in TARGETS if t.key in keys], roots), args.tracing),
            args.auth == "both",
        ),
        points=points,
        quick=args.quick,
        passes=args.passes or (1 if args.quick else 3),
        scale=args.scale,
        timeout=args.timeout,
        server_cpu=args.server_cpu if two and args.server_cpu >= 0 else None,
        client_cpu=args.client_cpu if two and args.client_cpu >= 0 else None,
        pg_admin=args.pg,
        first_delay_ms=args.first_delay_ms,
        profile=args.profile,
        census=args.sql_census,
        auth=args.auth,
        results_dir=args.out,
    )


def command_line(argv: list[str] | None) -> list[str]:
    """The options: argv, else `ARGS` from the environment (`make bench ARGS=--quick`
    exports it to the recipe even when the recipe does not pass it on)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv and os.environ.get("ARGS"):
        return shlex.split(os.environ["ARGS"])
    return argv


def main(argv: list[str] | None = None) -> None:
    plan = select(parse_args(command_line(argv)))
    plan.results_dir.mkdir(parents=True, exist_ok=True)
    try:
        import uvloop  # the load generator's own CPU matters: use the faster loop
    except ImportError:  # pragma: no cover
        data = asyncio.run(run_plan(plan))
    else:
        data = uvloop.run(run_plan(plan))
    text = markdown(data)
    (plan.results_dir / "latest.md").write_text(text)
    (plan.results_dir / "latest.json").write_bytes(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    )
    print(text)
    print(f"written: {plan.results_dir / 'latest.md'}, {plan.results_dir / 'latest.json'}")
    if data["meta"].get("failures"):
        sys.exit(1)


if __name__ == "__main__":
    main()
