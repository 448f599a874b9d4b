"""Diagnostics around the measured passes: py-spy profiles, the SQL census
of `bench.sqlcensus`, and the scan of a server's log for trouble."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from bench import procs

LOG_PATTERNS = {
    "Traceback": "Traceback",
    "ERROR": " ERROR ",
    "WARNING": " WARNING ",
    "database is locked": "database is locked",
    "QueuePool limit": "QueuePool limit",
    "too many open files": "Too many open files",
    "TimeoutError": "TimeoutError",
}


def start_spy(pid: int, fmt: str, out: Path) -> subprocess.Popen[bytes] | None:
    """`py-spy record` on `pid` until `stop_spy`; None when py-spy is missing.

    Blocking mode (py-spy pauses the process for each sample): slower, but the
    nonblocking mode misattributes frames of a busy event loop (it put the
    SDK's request building at a third of its real share)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    args = [spy, "record", "--pid", str(pid), "--rate", "200",
            "--format", fmt, "--output", str(out)]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_spy(spy_proc: subprocess.Popen[bytes], out: Path) -> str | None:
    """Stop py-spy (it writes its output on SIGINT); None, or why nothing was written."""
    spy_proc.send_signal(signal.SIGINT)
    try:
        _, err = spy_proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy_proc.kill()
        _, err = spy_proc.communicate()
    return None if out.exists() else err.decode(errors="replace")[-500:] or "no output"


def sql_census(port: int) -> dict[str, Any]:
    status, data = procs.http_json(f"http://127.0.0.1:{port}/__bench/sql")
    if status != 200:
        raise RuntimeError(f"SQL census unavailable: {status}")
    result: dict[str, Any] = orjson.loads(data)
    return result


def census_delta(before: dict[str, Any], after: dict[str, Any], runs: int) -> dict[str, Any]:
    """Per run: statements and commits, by kind and by the agentd function issuing them."""
    out: dict[str, Any] = {}
    for part in ("statements", "origins", "commits", "millis"):
        old, new = before.get(part, {}), after.get(part, {})
        per_run = {k: (v - old.get(k, 0)) / runs for k, v in new.items() if v != old.get(k, 0)}
        out[part] = dict(sorted(per_run.items(), key=lambda kv: -kv[1]))
    out["statements_per_run"] = sum(out["statements"].values())
    out["commits_per_run"] = sum(out["commits"].values())
    return out


def describe_census(sql: dict[str, Any]) -> str:
    lines = [
        f"    SQL per run: {sql['statements_per_run']:.1f} statements, "
        f"{sql['commits_per_run']:.1f} commits"
    ]
    lines += [f"      {n:6.2f}  {k}" for k, n in list(sql["origins"].items())[:25]]
    lines += ["    statement ms per run by origin (issue to result, waiting included):"]
    lines += [f"      {n:6.3f}  {k}" for k, n in list(sql.get("millis", {}).items())[:12]]
    lines += ["    commits per run by origin:"]
    lines += [f"      {n:6.2f}  {k}" for k, n in list(sql["commits"].items())[:12]]
    return "\n".join(lines)


def scan_log(path: Path) -> dict[str, Any]:
    """Count the worrying lines of a server log, and its distinct messages."""
    counts: dict[str, int] = {}
    messages: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        for name, needle in LOG_PATTERNS.items():
            if needle in line:
                counts[name] = counts.get(name, 0) + 1
        if re.search(r" (ERROR|WARNING|CRITICAL) |^ERROR:|^\w[\w.]*(Error|Exception)\b", line):
            text = re.sub(r"^\d{4}-\d\d-\d\d [\d:,]+ ", "", line)
            text = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\b\d+\b", "N", text)[:240]
            messages[text] = messages.get(text, 0) + 1
    top = sorted(messages.items(), key=lambda kv: -kv[1])[:15]
    return {"counts": counts, "messages": dict(top)}


def span_counts(ports: dict[str, int], sink_url: str) -> dict[str, Any]:
    """With `--tracing`: the spans each agentd target exported and dropped (its
    /metrics), and what the OTLP sink received."""
    counts: dict[str, Any] = {}
    for key, port in ports.items():
        _, body = procs.http_json(f"http://127.0.0.1:{port}/metrics")
        found = re.findall(
            r'^agentd_trace_spans_(exported|dropped)_total(?:\{reason="(\w+)"\})? (\S+)$',
            body.decode(),
            re.MULTILINE,
        )
        counts[key] = {
            kind + (f"_{reason}" if reason else ""): float(value) for kind, reason, value in found
        }
    _, stats = procs.http_json(f"{sink_url}/stats")
    counts["sink"] = orjson.loads(stats)
    return counts
