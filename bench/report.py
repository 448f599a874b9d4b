"""The results table (markdown, every figure with its ratio to the floor) and
the notes under it: errors, server log findings, sanity warnings."""

from __future__ import annotations

import statistics
from typing import Any

from bench.workloads import POINTS, TARGETS

# key, label, show a ratio to the floor, only for streams
METRICS: tuple[tuple[str, str, bool, bool], ...] = (
    ("runs_per_s", "runs/s", True, False),
    ("p50_ms", "p50 ms", True, False),
    ("p90_ms", "p90 ms", True, False),
    ("p99_ms", "p99 ms", True, False),
    ("ttfc_p50_ms", "first content p50 ms", True, True),
    ("ttfc_p99_ms", "first content p99 ms", True, True),
    ("errors", "errors / runs tried", False, False),
    ("cpu_ms_per_run", "server CPU ms/run", True, False),
    ("peak_rss_mb", "server peak RSS MB", True, False),
    ("pg_cpu_ms_per_run", "PostgreSQL CPU ms/run", False, False),
    ("runs", "runs measured", False, False),
)
SUMMED = {"errors", "runs", "ok"}
DISTURBED = 0.3  # cores taken by other processes (or stolen) worth a note
MAXED = {"peak_rss_mb", "core1_busy"}


def combine(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the passes (errors summed, peaks maxed)."""
    out: dict[str, Any] = {}
    for key, value in passes[0].items():
        values = [p[key] for p in passes if isinstance(p.get(key), int | float)]
        if not isinstance(value, int | float) or not values:
            continue
        if key in SUMMED:
            out[key] = sum(values)
        elif key in MAXED:
            out[key] = max(values)
        else:
            out[key] = statistics.median(values)
    return out


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if float(value).is_integer() and (value == 0 or abs(value) >= 10):
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell(value: float | str | None, floor: float | None, ratio: bool) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if not ratio or floor in (None, 0):
        return fmt(value)
    return f"{fmt(value)} ({value / floor:.2f}x)"


def _row(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """The medians of a point, with the errors of every pass, discarded ones too
    (other load may skew timings; it does not excuse a failed run)."""
    if not entry:
        return None
    every = entry["passes"] + entry.get("discarded", [])
    errors, tried = sum(p["errors"] for p in every), sum(p["runs"] for p in every)
    return {**entry["median"], "errors": f"{errors:,} / {tried:,}"}


def table(results: dict[str, dict[str, Any]]) -> str:
    targets = [t for t in TARGETS if t.key in results]
    lines = [
        "| workload | metric | " + " | ".join(t.label for t in targets) + " |",
        "|---|---|" + "---:|" * len(targets),
    ]
    for point in POINTS:
        rows = {t.key: _row(results[t.key].get(point.key)) for t in targets}
        if not any(rows.values()):
            continue
        floor = rows.get("floor") or {}
        first = True
        for key, label, ratio, streams_only in METRICS:
            if streams_only and not point.stream:
                continue
            values = [(rows[t.key] or {}).get(key) for t in targets]
            if all(v is None for v in values):
                continue
            cells = [cell(v, floor.get(key), ratio) for v in values]
            name = point.title if first else ""
            first = False
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(data: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for target in TARGETS:
        by_point = data["results"].get(target.key, {})
        for point in POINTS:
            entry = by_point.get(point.key)
            if not entry:
                continue
            kinds: dict[str, int] = {}
            for p in entry["passes"] + entry.get("discarded", []):
                for kind, count in p["error_kinds"].items():
                    kinds[kind] = kinds.get(kind, 0) + count
            if kinds:
                listed = ", ".join(
                    f"{k} x{v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])
                )
                out.append(f"{target.label}, {point.key}: errors: {listed}")
            busy = entry["median"].get("core1_busy", 0)
            if busy > 0.85:
                out.append(
                    f"{target.label}, {point.key}: core 1 (load generator + fake model) was "
                    f"{busy:.0%} busy: the client side may have limited this point"
                )
            foreign = max(p.get("foreign_cpu", 0) for p in entry["passes"])
            steal = max(p.get("steal_cpu", 0) for p in entry["passes"])
            if foreign > DISTURBED or steal > DISTURBED:
                out.append(
                    f"{target.label}, {point.key}: other load took up to {foreign:.2f} cores, "
                    f"the hypervisor stole up to {steal:.2f}: figures may be disturbed"
                )
            if entry.get("discarded"):
                out.append(
                    f"{target.label}, {point.key}: {len(entry['discarded'])} pass(es) "
                    "measured again after other load or CPU steal (their errors still count)"
                )
            calls = entry["median"].get("model_calls_per_run")
            expected = 2 if point.tools else 1
            if calls is not None and abs(calls - expected) > 0.01:
                out.append(
                    f"{target.label}, {point.key}: {calls:.2f} model calls per run "
                    f"(expected {expected})"
                )
        logs = data.get("server_logs", {}).get(target.key)
        if logs and logs.get("counts"):
            counts = ", ".join(f"{k} x{v}" for k, v in logs["counts"].items())
            out.append(f"{target.label}: server log: {counts}; most frequent lines:")
            out += [f"  - `{text}` x{n}" for text, n in list(logs["messages"].items())[:6]]
    return out


def markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    head = [
        f"# agentd benchmark ({meta['mode']})",
        "",
        f"{meta['started']} · agentd {meta.get('commit')} · {meta['cpu']} · "
        f"{meta['cores']} cores · Python {meta['python']} · "
        f"{meta['passes']} pass(es) per point, median shown · server on core "
        f"{meta['server_cpu']}, load generator + fake model on core {meta['client_cpu']} · "
        f"took {meta['duration_s']:.0f} s",
        "",
        "Each cell: the figure, then its ratio to the floor (floor = 1.00x; for runs/s "
        "lower is worse, for everything else higher is worse).",
        "",
        table(data["results"]),
        "",
    ]
    found = notes(data)
    if found:
        head += ["## Notes", "", *[ln if ln.startswith("  - ") else f"- {ln}" for ln in found], ""]
    return "\n".join(head)
