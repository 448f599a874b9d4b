"""Runs the plan: the fake model and every target (started, their agents
created), then each point for all targets (warm-up, then the passes of the
targets in turn, pass 1 of each, then pass 2, ...; optionally a profile), then
the report. Every pass also reads the server's CPU time and peak RSS from /proc,
the fake's request counters and the client core's CPU time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import diagnose, procs
from bench.load import run_pass
from bench.report import combine
from bench.workloads import Point, Target, agent_definitions, wire_for

# Cores taken by other processes (tests, builds) that make a pass suspect; the
# kernel's own network work is in there too (about 0.15 with PostgreSQL).
DISTURBED = 0.3
RETRIES = 2  # disturbed passes measured again, per point


@dataclass
class Plan:
    targets: list[Target]
    points: list[Point]
    quick: bool
    passes: int
    scale: float
    timeout: float
    server_cpu: int | None
    client_cpu: int | None
    pg_admin: str
    first_delay_ms: float
    profile: str | None  # py-spy output format, or None
    census: bool  # agentd with the SQL census (bench.sqlcensus)
    results_dir: Path
    # "key": API_KEYS set, runs sent with a stored tenant key; "both": each agentd
    # target also without (its keyed twin, `Target.keyed`, sends the key)
    auth: str = "none"

    @property
    def seconds(self) -> float:
        """How long a steady pass should last."""
        return (2.0 if self.quick else 10.0) * self.scale

    def passes_for(self, point: Point) -> int:
        return min(self.passes, point.passes) if point.passes and not self.quick else self.passes

    def runs(self, point: Point, rate: float) -> int:
        """Runs per pass: the burst size, or about `seconds` at the warm-up `rate`."""
        if point.burst:
            return point.concurrency
        least = max(point.concurrency, 10) if self.quick else max(4 * point.concurrency, 50)
        return max(least, min(point.max_runs, round(rate * self.seconds)))


@dataclass
class Live:
    """A started target and the processes around it."""

    target: Target
    proc: procs.Proc
    port: int
    fake: procs.Proc
    fake_url: str
    key: str = ""  # the API key runs are sent with (`--auth key`)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def control(fake_url: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    body = orjson.dumps(changes) if changes is not None else None
    status, data = procs.http_json(f"{fake_url}/control", body)
    if status != 200:
        raise RuntimeError(f"fake model control failed: {status} {data[:200]!r}")
    result: dict[str, Any] = orjson.loads(data)
    return result


async def measure(
    live: Live, plan: Plan, point: Point, runs: int, concurrency: int
) -> dict[str, Any]:
    """One pass, with the server-side readings around it."""
    pid, fake_pid, me = live.proc.pid, live.fake.pid, os.getpid()
    wire = wire_for(live.target, point, live.port, f"b{uuid.uuid4().hex[:12]}", live.key)
    before = control(live.fake_url)
    census = plan.census and live.target.agentd
    sql_before = diagnose.sql_census(live.port) if census else {}
    pg_before = procs.postgres_cpu() if live.target.database == "pg" else {}
    procs.reset_peak_rss(pid)
    cpu0, fake0, me0 = procs.cpu_seconds(pid), procs.cpu_seconds(fake_pid), procs.cpu_seconds(me)
    busy0, steal0 = procs.machine_cpu()
    result = await run_pass("127.0.0.1", live.port, wire, runs, concurrency, plan.timeout)
    busy1, steal1 = procs.machine_cpu()
    cpu1, fake1, me1 = procs.cpu_seconds(pid), procs.cpu_seconds(fake_pid), procs.cpu_seconds(me)
    after = control(live.fake_url)
    summary = result.summary()
    done = max(result.ok, 1)
    summary["cpu_ms_per_run"] = (cpu1 - cpu0) * 1000 / done
    summary["server_cpu_busy"] = (cpu1 - cpu0) / result.wall if result.wall else 0.0
    summary["peak_rss_mb"] = procs.peak_rss_mb(pid)
    summary["core1_busy"] = ((fake1 - fake0) + (me1 - me0)) / result.wall if result.wall else 0.0
    summary["model_calls_per_run"] = (after["requests"] - before["requests"]) / done
    summary["fake_errors"] = after["errors"] - before["errors"]
    if census:
        summary["sql"] = diagnose.census_delta(sql_before, diagnose.sql_census(live.port), done)
    ours = (cpu1 - cpu0) + (fake1 - fake0) + (me1 - me0)
    if pg_before:
        pg_after = procs.postgres_cpu()
        spent = sum(t - pg_before.get(p, 0.0) for p, t in pg_after.items())
        summary["pg_cpu_ms_per_run"] = spent * 1000 / done
        ours += spent
    # Other processes on the machine (tests, builds...) and the hypervisor, in cores.
    wall = result.wall or 1.0
    summary["foreign_cpu"] = max(0.0, (busy1 - busy0) - ours) / wall
    summary["steal_cpu"] = (steal1 - steal0) / wall
    return summary


def disturbed(summary: dict[str, Any]) -> bool:
    """Whether other processes took enough CPU to skew the pass (hypervisor steal is
    left to the median: on a busy VM it never stops)."""
    return bool(summary["foreign_cpu"] > DISTURBED)


def describe(label: str, s: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        return "-" if s.get(key) is None else f"{s[key]:.0f}"

    line = (
        f"{label}: {s['ok']}/{s['runs']} ok, {s['errors']} errors, {s['runs_per_s']:.1f} runs/s, "
        f"p50 {ms('p50_ms')} p99 {ms('p99_ms')} ms"
    )
    if s.get("ttfc_p50_ms") is not None:
        line += f", first content p50 {ms('ttfc_p50_ms')} ms"
    line += (
        f", server {s['cpu_ms_per_run']:.2f} CPU ms/run ({s['server_cpu_busy']:.0%} busy), "
        f"RSS {s['peak_rss_mb']:.0f} MB, core 1 {s['core1_busy']:.0%}, "
        f"other load {s['foreign_cpu']:.2f} cores"
    )
    if s["errors"]:
        line += f"\n    errors: {s['error_kinds']}"
    if s.get("sql"):
        line += "\n" + diagnose.describe_census(s["sql"])
    return line


async def warm_up(live: Live, plan: Plan, point: Point) -> int:
    """A short unmeasured pass at the point; returns the runs a measured pass makes."""
    warm = min(8 if plan.quick else 32, point.concurrency)
    tag = "warm" + uuid.uuid4().hex[:8]
    wire = wire_for(live.target, point, live.port, tag, live.key)
    warm_runs = max(2 * warm, 8 if plan.quick else 24)
    warmup = await run_pass("127.0.0.1", live.port, wire, warm_runs, warm, plan.timeout)
    return plan.runs(point, warmup.ok / warmup.wall if warmup.wall else 0.0)


async def one_pass(live: Live, plan: Plan, point: Point, runs: int, label: str) -> tuple[
    dict[str, Any], list[dict[str, Any]]
]:  # fmt: skip
    """A measured pass, measured again (up to RETRIES times) while other processes
    take too much CPU; returns it and the passes discarded."""
    discarded: list[dict[str, Any]] = []
    while True:
        await asyncio.sleep(0.5)
        summary = await measure(live, plan, point, runs, point.concurrency)
        log("  " + describe(label, summary))
        if not disturbed(summary) or len(discarded) >= RETRIES:
            return summary, discarded
        log(f"    other load: {summary['foreign_cpu']:.2f} cores, steal "
            f"{summary['steal_cpu']:.2f}: pass discarded, once more")  # fmt: skip
        discarded.append(summary)


def groups(points: list[Point]) -> list[list[Point]]:
    """Consecutive steady points the fake model answers alike (the same tokens and
    delay), measured together; a burst point alone."""
    out: list[list[Point]] = []
    for point in points:
        last = out[-1][-1] if out else None
        alike = last is not None and not point.burst and not last.burst
        if alike and (last.tokens, last.token_delay_ms) == (point.tokens, point.token_delay_ms):
            out[-1].append(point)
        else:
            out.append([point])
    return out


async def bench_points(
    lives: list[Live], plan: Plan, points: list[Point]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every target at each of `points` (a `groups` group), their passes interleaved
    (pass 1 of each point and target, then pass 2, ...): a machine whose speed
    drifts during the run, or a database that grows with the runs, moves every
    figure alike, so the ratios between targets and between the points (a
    protocol's stream against the native one) stay fair. Results by point, then
    target."""
    first = points[0]
    control(
        lives[0].fake_url,
        {
            "tokens": first.tokens,
            "token_delay_ms": first.token_delay_ms,
            "first_delay_ms": plan.first_delay_ms,
        },
    )
    runs = {
        (p.key, live.target.key): await warm_up(live, plan, p) for p in points for live in lives
    }
    passes: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in runs}
    discarded: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in runs}
    for number in range(1, max(plan.passes_for(p) for p in points) + 1):
        for point in points:
            count = plan.passes_for(point)
            if number > count:
                continue
            for live in lives:
                at = (point.key, live.target.key)
                label = f"{live.target.key} {point.key} pass {number}/{count}"
                summary, dropped = await one_pass(live, plan, point, runs[at], label)
                passes[at].append(summary)
                discarded[at] += dropped
    entries: dict[str, dict[str, dict[str, Any]]] = {point.key: {} for point in points}
    for point in points:
        for live in lives:
            at = (point.key, live.target.key)
            entry: dict[str, Any] = {
                "runs": runs[at],
                "passes": passes[at],
                "median": combine(passes[at]),
            }
            if discarded[at]:
                entry["discarded"] = discarded[at]
            if plan.profile:
                entry["profile"] = await profile_pass(live, plan, point, runs[at])
            entries[point.key][live.target.key] = entry
    return entries


async def profile_pass(live: Live, plan: Plan, point: Point, runs: int) -> str | None:
    """One more pass (not counted) under `py-spy record`; returns the output path."""
    ext = {"raw": "txt", "flamegraph": "svg", "speedscope": "json"}[plan.profile or "raw"]
    out = plan.results_dir / f"profile-{live.target.key}-{point.key}.{ext}"
    spy_proc = diagnose.start_spy(live.proc.pid, plan.profile or "raw", out)
    if spy_proc is None:
        log("  py-spy is not installed (.venv/bin/pip install py-spy): no profile")
        return None
    procs.pin(spy_proc.pid, plan.client_cpu)
    await asyncio.sleep(1.0)
    summary = await measure(live, plan, point, runs, point.concurrency)
    log("  " + describe(f"{live.target.key} {point.key} profiled", summary))
    failure = diagnose.stop_spy(spy_proc, out)
    if failure is not None:
        log(f"  py-spy wrote nothing: {failure}")
        return None
    log(f"  profile: {out}")
    if plan.profile == "raw":
        from bench.profile import summarize

        log(summarize(out, top=15))
    return str(out)


async def start_target(
    target: Target,
    plan: Plan,
    tmp: Path,
    fake: procs.Proc,
    fake_url: str,
    sink_url: str | None = None,
) -> tuple[Live, str | None]:
    env = {
        "OPENAI_BASE_URL": f"{fake_url}/v1",
        "OPENAI_API_KEY": "x",
        "LOG_LEVEL": "warning",
        "SEED_DEMO_AGENT": "false",
        "API_KEYS": OPERATOR_KEY if keyed(target, plan) else "",
        "PYTHONUNBUFFERED": "1",
    }
    if target.traced and sink_url is not None:
        # Every other OTEL_* at its default: batches of 512 every 5 s, queue of 2048.
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink_url
        env["OTEL_SERVICE_NAME"] = f"agentd-bench-{target.key}"
    database = None
    if target.database == "sqlite":
        env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp}/{target.key}.db"
    elif target.database == "pg":
        database = f"agentd_bench_{uuid.uuid4().hex[:10]}"
        await procs.create_database(plan.pg_admin, database)
        base = plan.pg_admin.rsplit("/", 1)[0].split("://", 1)[1]
        env["DATABASE_URL"] = f"postgresql+asyncpg://{base}/{database}"
    app, ready = ("app.main:app", "/readyz") if target.agentd else ("bench.floor:app", "/healthz")
    if target.agentd and plan.census:
        app = "bench.sqlcensus:app"
    try:
        proc, port = procs.start_uvicorn(
            target.key,
            app,
            env,
            tmp / f"{target.key}.log",
            plan.server_cpu,
            ready,
            loop=procs.AGENTD_LOOP if target.agentd else None,
            root=target.root or procs.ROOT,
        )
    except Exception:
        if database:
            await procs.drop_database(plan.pg_admin, database)
        raise
    live = Live(target, proc, port, fake, fake_url)
    if keyed(target, plan):
        live.key = tenant_key(port)
    if target.agentd:
        for body in agent_definitions():
            url = f"http://127.0.0.1:{port}/v1/agents"
            status, data = procs.http_json(url, body, key=live.key)
            if status != 201:
                proc.stop()
                raise RuntimeError(f"creating a bench agent failed: {status} {data[:300]!r}")
    return live, database


OPERATOR_KEY = "bench-operator-key"


def keyed(target: Target, plan: Plan) -> bool:
    """Whether `target` is served with `API_KEYS` and sent a stored tenant key."""
    return target.agentd and (target.keyed or plan.auth == "key")


def tenant_key(port: int) -> str:
    """A stored API key of a `bench` tenant, created with the operator's key: runs
    go through the whole credential path (lookup, cache, tenant filters). A
    baseline checkout without stored keys is sent the operator's key."""
    body = orjson.dumps({"name": "bench", "tenant_id": "bench", "scopes": ["admin"]})
    url = f"http://127.0.0.1:{port}/v1/api-keys"
    status, data = procs.http_json(url, body, key=OPERATOR_KEY)
    if status in (404, 405):
        return OPERATOR_KEY
    if status != 201:
        raise RuntimeError(f"creating the bench API key failed: {status} {data[:300]!r}")
    key: str = orjson.loads(data)["key"]
    return key


def checkout_commit(root: Path) -> str | None:
    """The short commit of the checkout at `root`, and how many files of its app/
    differ from it."""
    commit = None
    with contextlib.suppress(Exception):
        head = ["git", "rev-parse", "--short", "HEAD"]
        status = ["git", "status", "--porcelain", "--", "app"]
        commit = subprocess.run(head, cwd=root, capture_output=True, text=True).stdout.strip()
        changed = subprocess.run(status, cwd=root, capture_output=True, text=True).stdout
        if changed.strip():
            commit += f" + {len(changed.splitlines())} changed in app/"
    return commit


def machine(plan: Plan) -> dict[str, Any]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    baselines = {
        t.key: {"root": str(t.root), "commit": checkout_commit(t.root)}
        for t in plan.targets
        if t.root is not None
    }
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "commit": checkout_commit(procs.ROOT),
        "labels": {t.key: t.label for t in plan.targets},
        **({"baselines": baselines} if baselines else {}),
    }


async def run_plan(plan: Plan) -> dict[str, Any]:
    began = time.monotonic()
    fds = procs.raise_fd_limit()
    if plan.client_cpu is not None:
        os.sched_setaffinity(0, {plan.client_cpu})
    tmp = Path(tempfile.mkdtemp(prefix="agentd-bench-"))
    data: dict[str, Any] = {
        "meta": {
            **machine(plan),
            "mode": "quick" if plan.quick else "full",
            "passes": plan.passes,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "fd_limit": fds,
            "server_cpu": plan.server_cpu,
            "client_cpu": plan.client_cpu,
            "steady_pass_seconds": plan.seconds,
            "first_delay_ms": plan.first_delay_ms,
            "auth": plan.auth,
        },
        "results": {},
        "server_logs": {},
    }
    fake, fake_port = procs.start_fake(tmp / "fake.log", plan.client_cpu)
    fake_url = f"http://127.0.0.1:{fake_port}"
    sink: procs.Proc | None = None
    sink_url: str | None = None
    if any(target.traced for target in plan.targets):
        sink, sink_port = procs.start_sink(tmp / "otlp-sink.log", plan.client_cpu)
        sink_url = f"http://127.0.0.1:{sink_port}"
    lives: list[Live] = []
    databases: dict[str, str] = {}

    def failed(target: Target, exc: Exception) -> None:
        # One broken target should not lose the others.
        log(f"{target.label}: FAILED: {exc}")
        data["meta"].setdefault("failures", {})[target.key] = str(exc)[:2000]

    try:
        for target in plan.targets:
            log(f"{target.label}: starting")
            try:
                live, database = await start_target(target, plan, tmp, fake, fake_url, sink_url)
            except Exception as exc:
                failed(target, exc)
                continue
            lives.append(live)
            if database:
                databases[target.key] = database
            data["results"][target.key] = {}
        for group in groups(plan.points):
            while lives:
                try:
                    measured = await bench_points(lives, plan, group)
                except Exception as exc:
                    # A target that died takes the points down: drop it, measure the
                    # points again for the others.
                    dead = [live for live in lives if live.proc.popen.poll() is not None]
                    if not dead:
                        raise
                    for live in dead:
                        failed(live.target, exc)
                        data["server_logs"][live.target.key] = diagnose.scan_log(live.proc.log)
                        lives.remove(live)
                    continue
                for point_key, entries in measured.items():
                    for key, entry in entries.items():
                        data["results"][key][point_key] = entry
                break
        if sink_url is not None:
            ports = {live.target.key: live.port for live in lives if live.target.traced}
            data["meta"]["tracing_spans"] = diagnose.span_counts(ports, sink_url)
    finally:
        for live in lives:
            live.proc.stop()
            data["server_logs"][live.target.key] = diagnose.scan_log(live.proc.log)
        if sink is not None:  # after the targets: they export their last spans as they stop
            sink.stop()
        for database in databases.values():
            with contextlib.suppress(Exception):
                await procs.drop_database(plan.pg_admin, database)
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    data["meta"]["duration_s"] = time.monotonic() - began
    return data
