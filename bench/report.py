"""The results table (markdown, every figure with its ratio to the floor), the
targets set for the service with whether each holds, and the notes under them:
errors, server log findings, sanity warnings.

`python -m bench.report bench/results/latest.json` prints the report of a stored run.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class Bar:
    """One target set for the service: `metric` of `target` at `point` (None: at
    every point measured) against `limit`. `ratio` is runs/s over the floor's
    (at least `limit`), or over the same target's at point `against`; `errors`
    are counted over every pass, discarded ones too; any other metric is a median
    that must stay at or under `limit`."""

    target: str
    point: str | None
    metric: str
    limit: float
    label: str
    against: str | None = None


BARS: tuple[Bar, ...] = (
    Bar("pg", "W1-c32", "ratio", 1.0, "W1 c32 runs/s >= 1.0x the floor"),
    Bar("pg", "W2-c32", "ratio", 2.0, "W2 c32 runs/s >= 2.0x the floor"),
    Bar("pg", "W3-c32", "ratio", 1.2, "W3 c32 runs/s >= 1.2x the floor"),
    Bar("pg", "W2chat-c32", "ratio", 0.85, "W2 via chat completions >= 0.85x W2", "W2-c32"),
    Bar("pg", "W2resp-c32", "ratio", 0.85, "W2 via responses >= 0.85x W2", "W2-c32"),
    Bar("pg", "W2agui-c32", "ratio", 0.85, "W2 via AG-UI >= 0.85x W2", "W2-c32"),
    Bar("pg", "W2vercel-c32", "ratio", 0.85, "W2 via the AI SDK UI stream >= 0.85x W2", "W2-c32"),
    Bar("pg", "W4-c1024", "errors", 0, "1,024 slow streams: no errors"),
    Bar("pg", "W4-c1024", "p99_ms", 4000, "1,024 slow streams: p99 <= 4 s"),
    Bar("pg", "W4-c1024", "peak_rss_mb", 250, "1,024 slow streams: peak RSS <= 250 MB"),
    Bar("sqlite", None, "errors", 0, "no errors on any workload"),
    Bar("sqlite", "W1-c32", "ratio", 0.7, "W1 c32 runs/s >= 0.7x the floor"),
)
# The floor's p99 with 1,024 slow streams on the machine the absolute p99 bar was set on.
REFERENCE_FLOOR_P99_MS = 21_100.0


def _errors(entry: dict[str, Any]) -> int:
    return sum(p["errors"] for p in entry["passes"] + entry.get("discarded", []))


def measure_bar(bar: Bar, results: dict[str, dict[str, Any]]) -> tuple[str, bool] | None:
    """The figure `bar` asks for, formatted, and whether it holds; None when this
    run did not measure it."""
    by_point = results.get(bar.target, {})
    if bar.point is None:
        entries = [e for e in by_point.values() if e]
        if not entries:
            return None
        errors = sum(_errors(e) for e in entries)
        return f"{errors:,}", errors <= bar.limit
    entry = by_point.get(bar.point)
    if not entry:
        return None
    if bar.metric == "errors":
        errors = _errors(entry)
        return f"{errors:,}", errors <= bar.limit
    value = entry["median"].get("runs_per_s" if bar.metric == "ratio" else bar.metric)
    if value is None:
        return None
    if bar.metric == "ratio":
        base = results.get("floor", {}).get(bar.point)
        if bar.against is not None:
            base = by_point.get(bar.against)
        base_median = (base or {}).get("median", {})
        if not base or not base_median.get("runs_per_s"):
            return None
        ratio = paired_ratio(entry, base)
        return f"{ratio:.2f}x", ratio >= bar.limit
    if bar.metric.endswith("_ms"):
        return f"{value / 1000:.2f} s", value <= bar.limit
    unit = " MB" if bar.metric.endswith("_mb") else ""
    return f"{fmt(value)}{unit}", value <= bar.limit


def paired_ratio(entry: dict[str, Any], base: dict[str, Any]) -> float:
    """`entry`'s runs/s over `base`'s. Passes of points measured together are
    interleaved pass by pass, so pass i of each ran minutes apart at most: the
    median of the passes' own ratios, which a host slowing down during one pass
    moves less than the ratio of the two medians (each may come from another
    pass). The ratio of the medians when the passes do not pair up."""
    mine = [p.get("runs_per_s") for p in entry["passes"]]
    theirs = [p.get("runs_per_s") for p in base["passes"]]
    if len(mine) == len(theirs) > 1 and all(mine) and all(theirs):
        return float(statistics.median(a / b for a, b in zip(mine, theirs, strict=True)))
    return float(entry["median"]["runs_per_s"] / base["median"]["runs_per_s"])


def labels(data: dict[str, Any]) -> dict[str, str]:
    """The label of each target measured, in the order measured (baselines too)."""
    known = {t.key: t.label for t in TARGETS} | data.get("meta", {}).get("labels", {})
    return {key: known.get(key, key) for key in data["results"]}


def targets(results: dict[str, dict[str, Any]]) -> list[str]:
    """The targets as a markdown table (those this run measured, on this checkout:
    a baseline's figures are there to compare with), and, when the floor ran
    1,024 streams, how fast this machine was next to the reference."""
    names = {t.key: t.label for t in TARGETS}
    lines = ["| target | bar | measured | |", "|---|---|---:|---|"]
    for bar in BARS:
        found = measure_bar(bar, results)
        if found is not None:
            figure, holds = found
            verdict = "holds" if holds else "**missed**"
            lines.append(f"| {names[bar.target]} | {bar.label} | {figure} | {verdict} |")
    if len(lines) == 2:
        return []
    floor = (results.get("floor", {}).get("W4-c1024") or {}).get("median", {})
    if floor.get("p99_ms"):
        lines += [
            "",
            f"The p99 bar is absolute. The floor's own p99 with 1,024 streams was "
            f"{floor['p99_ms'] / 1000:.1f} s in this run, against "
            f"{REFERENCE_FLOOR_P99_MS / 1000:.1f} s on the machine the bar was set on "
            f"({floor['p99_ms'] / REFERENCE_FLOOR_P99_MS:.2f}x as slow).",
        ]
    return lines


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


def table(data: dict[str, Any]) -> str:
    results, columns = data["results"], labels(data)
    lines = [
        "| workload | metric | " + " | ".join(columns.values()) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for point in POINTS:
        rows = {key: _row(results[key].get(point.key)) for key in columns}
        if not any(rows.values()):
            continue
        floor = rows.get("floor") or {}
        first = True
        for key, label, ratio, streams_only in METRICS:
            if streams_only and not point.stream:
                continue
            values = [(rows[target] or {}).get(key) for target in columns]
            if all(v is None for v in values):
                continue
            cells = [cell(v, floor.get(key), ratio) for v in values]
            name = point.title if first else ""
            first = False
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


COMPARED = (("runs_per_s", "runs/s"), ("p99_ms", "p99"), ("cpu_ms_per_run", "CPU ms/run"))


def against_baselines(data: dict[str, Any]) -> list[str]:
    """Per point, each baseline's agentd target over the baseline: runs/s, p99 and
    server CPU per run, as ratios (for runs/s above 1 is better, for the others
    below 1 is)."""
    results, names = data["results"], labels(data)
    lines: list[str] = []
    for key in data["meta"].get("baselines", {}):
        ours = key.split("-baseline", 1)[0]
        for point in POINTS:
            mine = (results.get(ours, {}).get(point.key) or {}).get("median", {})
            theirs = (results.get(key, {}).get(point.key) or {}).get("median", {})
            ratios = [
                f"{label} {mine[metric] / theirs[metric]:.2f}x"
                for metric, label in COMPARED
                if mine.get(metric) and theirs.get(metric)
            ]
            if ratios:
                lines.append(
                    f"| {names.get(ours, ours)} / {names.get(key, key)} | {point.key} | "
                    + ", ".join(ratios)
                    + " |"
                )
    return (
        ["| compared | point | this checkout / baseline |", "|---|---|---|", *lines]
        if lines
        else []
    )


def notes(data: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, label in labels(data).items():
        by_point = data["results"].get(key, {})
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
                out.append(f"{label}, {point.key}: errors: {listed}")
            busy = entry["median"].get("core1_busy", 0)
            if busy > 0.85:
                out.append(
                    f"{label}, {point.key}: core 1 (load generator + fake model) was "
                    f"{busy:.0%} busy: the client side may have limited this point"
                )
            foreign = max(p.get("foreign_cpu", 0) for p in entry["passes"])
            steal = max(p.get("steal_cpu", 0) for p in entry["passes"])
            if foreign > DISTURBED or steal > DISTURBED:
                out.append(
                    f"{label}, {point.key}: other load took up to {foreign:.2f} cores, "
                    f"the hypervisor stole up to {steal:.2f}: figures may be disturbed"
                )
            if entry.get("discarded"):
                out.append(
                    f"{label}, {point.key}: {len(entry['discarded'])} pass(es) "
                    "measured again after other load or CPU steal (their errors still count)"
                )
            calls = entry["median"].get("model_calls_per_run")
            expected = 2 if point.tools else 1
            if calls is not None and abs(calls - expected) > 0.01:
                out.append(
                    f"{label}, {point.key}: {calls:.2f} model calls per run (expected {expected})"
                )
        logs = data.get("server_logs", {}).get(key)
        if logs and logs.get("counts"):
            counts = ", ".join(f"{k} x{v}" for k, v in logs["counts"].items())
            out.append(f"{label}: server log: {counts}; most frequent lines:")
            out += [f"  - `{text}` x{n}" for text, n in list(logs["messages"].items())[:6]]
    return out


# Tracing on may cost at most this much more server CPU per run than tracing off.
TRACING_CPU_BAR = 0.15
# A run sent with a stored tenant key may cost at most this much more server CPU.
AUTH_CPU_BAR = 0.05


def twin_cost(data: dict[str, Any], suffix: str, bar: float, what: str) -> list[str]:
    """Each twin target (key ending in `suffix`) against its plain target, point by
    point (their passes interleaved): server CPU per run, held to `bar`, and runs/s."""
    results, names = data["results"], labels(data)
    lines: list[str] = []
    for key in results:
        if not key.endswith(suffix):
            continue
        plain = key.removesuffix(suffix)
        for point in POINTS:
            on = (results[key].get(point.key) or {}).get("median", {})
            off = (results.get(plain, {}).get(point.key) or {}).get("median", {})
            if not on.get("cpu_ms_per_run") or not off.get("cpu_ms_per_run"):
                continue
            cpu = on["cpu_ms_per_run"] / off["cpu_ms_per_run"] - 1
            rate = on["runs_per_s"] / off["runs_per_s"] - 1
            verdict = "holds" if cpu <= bar else "**missed**"
            lines.append(
                f"| {names.get(key, key)} | {point.key} | {fmt(off['cpu_ms_per_run'])} ->"
                f" {fmt(on['cpu_ms_per_run'])} ({cpu:+.1%}) | {verdict} |"
                f" {fmt(off['runs_per_s'])} -> {fmt(on['runs_per_s'])} ({rate:+.1%}) |"
            )
    if not lines:
        return []
    return [
        f"| {what} | point | server CPU ms/run, plain -> {what} | <= +{bar:.0%} |"
        f" runs/s, plain -> {what} |",
        "|---|---|---:|---|---:|",
        *lines,
        "",
    ]


def tracing_cost(data: dict[str, Any]) -> list[str]:
    """With `--tracing`: each traced twin against its untraced target (held to
    TRACING_CPU_BAR); then the spans each twin exported and dropped, and what
    the sink received."""
    lines = twin_cost(data, "-traced", TRACING_CPU_BAR, "traced")
    names = labels(data)
    for key, counts in (data["meta"].get("tracing_spans") or {}).items():
        listed = ", ".join(f"{name} {fmt(value)}" for name, value in counts.items())
        lines.append(f"- spans, {names.get(key, key)}: {listed}")
    return lines


def auth_cost(data: dict[str, Any]) -> list[str]:
    """With `--auth both`: each keyed twin against its target without credentials."""
    return twin_cost(data, "-keyed", AUTH_CPU_BAR, "keyed")


def markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    head = [
        f"# agentd benchmark ({meta['mode']})",
        "",
        f"{meta['started']} · agentd {meta.get('commit')} · {meta['cpu']} · "
        f"{meta['cores']} cores · Python {meta['python']} · "
        f"{meta['passes']} pass(es) per point, median shown · server on core "
        f"{meta['server_cpu']}, load generator + fake model on core {meta['client_cpu']} · "
        f"took {meta['duration_s']:.0f} s"
        + (" · runs sent with a stored API key" if meta.get("auth") == "key" else ""),
        "",
        *[
            f"{labels(data).get(key, key)}: served from {where['root']} "
            f"at {where.get('commit')}, with the same virtualenv.\n"
            for key, where in meta.get("baselines", {}).items()
        ],
        "Each cell: the figure, then its ratio to the floor (floor = 1.00x; for runs/s "
        "lower is worse, for everything else higher is worse).",
        "",
        table(data),
        "",
    ]
    compared = against_baselines(data)
    if compared:
        head += ["## Against the baseline", "", *compared, ""]
    checked = targets(data["results"])
    if checked:
        head += ["## Targets", "", *checked, ""]
    traced = tracing_cost(data)
    if traced:
        head += ["## Tracing", "", *traced, ""]
    keyed = auth_cost(data)
    if keyed:
        head += ["## Credentials", "", *keyed, ""]
    found = notes(data)
    if found:
        head += ["## Notes", "", *[ln if ln.startswith("  - ") else f"- {ln}" for ln in found], ""]
    return "\n".join(head)


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the report of a stored benchmark run.")
    parser.add_argument("results", type=Path, help="a latest.json that `python -m bench` wrote")
    args = parser.parse_args()
    print(markdown(json.loads(args.results.read_text())), end="")


if __name__ == "__main__":
    main()
