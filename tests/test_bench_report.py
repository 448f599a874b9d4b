"""The benchmark report says which of the service's targets a run meets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.calls import diff
from bench.report import (
    BARS,
    against_baselines,
    auth_cost,
    labels,
    markdown,
    measure_bar,
    table,
    targets,
    tracing_cost,
)
from bench.workloads import POINTS, TARGETS, with_baselines, with_keyed, with_traced


def entry(*, errors: int = 0, discarded_errors: int | None = None, **median: float) -> Any:
    passes = [{"errors": errors, "runs": 100, "error_kinds": {}}]
    discarded = [] if discarded_errors is None else [{"errors": discarded_errors, "runs": 100}]
    return {"passes": passes, "discarded": discarded, "median": median}


def results(**overrides: Any) -> dict[str, dict[str, Any]]:
    base: dict[str, dict[str, Any]] = {
        "floor": {
            "W1-c32": entry(runs_per_s=200.0),
            "W2-c32": entry(runs_per_s=50.0),
            "W3-c32": entry(runs_per_s=100.0),
            "W4-c1024": entry(p99_ms=30_000.0),
        },
        "pg": {
            "W1-c32": entry(runs_per_s=260.0),
            "W2-c32": entry(runs_per_s=101.0),
            "W2chat-c32": entry(runs_per_s=90.0),
            "W2resp-c32": entry(runs_per_s=88.0),
            "W2agui-c32": entry(runs_per_s=92.0),
            "W2vercel-c32": entry(runs_per_s=94.0),
            "W3-c32": entry(runs_per_s=130.0),
            "W4-c1024": entry(p99_ms=3_900.0, peak_rss_mb=240.0),
        },
        "sqlite": {"W1-c32": entry(runs_per_s=150.0), "W2-c32": entry(runs_per_s=60.0)},
    }
    for key, value in overrides.items():
        target, point = key.split("__")
        base[target][point.replace("_", "-")] = value
    return base


def verdicts(data: dict[str, dict[str, Any]]) -> dict[str, bool]:
    found = {bar.label + " " + bar.target: measure_bar(bar, data) for bar in BARS}
    return {label: result[1] for label, result in found.items() if result is not None}


def test_a_run_above_every_bar_meets_them_all() -> None:
    assert all(verdicts(results()).values())
    assert len(verdicts(results())) == len(BARS)


def test_a_ratio_below_its_bar_is_missed() -> None:
    missed = verdicts(results(pg__W2_c32=entry(runs_per_s=95.0)))  # 1.9x of the floor's 50
    assert [label for label, holds in missed.items() if not holds] == [
        "W2 c32 runs/s >= 2.0x the floor pg"
    ]


def test_a_protocol_is_measured_against_the_native_stream_of_its_target() -> None:
    slow_chat = results(pg__W2chat_c32=entry(runs_per_s=85.0))  # 0.84x of pg's W2 101
    bar = next(b for b in BARS if b.point == "W2chat-c32")
    assert measure_bar(bar, slow_chat) == ("0.84x", False)
    assert measure_bar(bar, results()) == ("0.89x", True)
    del slow_chat["pg"]["W2-c32"]
    assert measure_bar(bar, slow_chat) is None


def test_a_ratio_pairs_the_passes_measured_together() -> None:
    """Pass 3 of the protocol ran while the host slowed down: the median of the
    passes' own ratios holds the bar, the ratio of the medians would not."""

    def passes(*runs_per_s: float) -> Any:
        median = sorted(runs_per_s)[len(runs_per_s) // 2]
        return {
            "passes": [{"errors": 0, "runs_per_s": r} for r in runs_per_s],
            "median": {"runs_per_s": median},
        }

    data = results(
        pg__W2_c32=passes(200.0, 270.0, 260.0), pg__W2agui_c32=passes(180.0, 268.0, 150.0)
    )
    bar = next(b for b in BARS if b.point == "W2agui-c32")
    assert measure_bar(bar, data) == ("0.90x", True)  # 0.90, 0.99, 0.58
    assert 180.0 / 260.0 < 0.85  # the medians' ratio
    data["pg"]["W2agui-c32"] = passes(160.0, 268.0, 150.0)  # 0.80, 0.99, 0.58
    assert measure_bar(bar, data) == ("0.80x", False)


def test_the_absolute_p99_and_memory_bars() -> None:
    slow = results(pg__W4_c1024=entry(p99_ms=4_100.0, peak_rss_mb=251.0))
    bars = {bar.metric: measure_bar(bar, slow) for bar in BARS if bar.point == "W4-c1024"}
    assert bars["p99_ms"] == ("4.10 s", False)
    assert bars["peak_rss_mb"] == ("251 MB", False)
    assert bars["errors"] == ("0", True)


def test_errors_of_discarded_passes_count() -> None:
    data = results(sqlite__W2_c32=entry(runs_per_s=60.0, discarded_errors=2))
    sqlite_errors = next(b for b in BARS if b.target == "sqlite" and b.metric == "errors")
    assert measure_bar(sqlite_errors, data) == ("2", False)


def test_bars_a_run_did_not_measure_are_left_out() -> None:
    data = results()
    del data["pg"]["W4-c1024"]
    lines = targets(data)
    assert not any("1,024" in line for line in lines[2:] if line.startswith("|"))
    assert any("W1 c32" in line for line in lines)


def test_the_report_compares_the_floor_with_the_reference_machine() -> None:
    lines = targets(results())
    assert lines[-1].endswith("(1.42x as slow).")
    assert "30.0 s in this run" in lines[-1]
    assert targets({}) == []


def test_a_baseline_follows_each_agentd_target_with_its_own_key_and_label() -> None:
    chosen = [t for t in TARGETS if t.key in ("floor", "pg")]
    one = with_baselines(chosen, [Path("/src/agentd-main")])
    assert [(t.key, t.label, t.root) for t in one] == [
        ("floor", "floor", None),
        ("pg", "agentd PostgreSQL", None),
        ("pg-baseline", "agentd PostgreSQL (baseline)", Path("/src/agentd-main")),
    ]
    assert one[2].database == "pg" and one[2].agentd
    two = with_baselines(chosen[1:], [Path("/src/a"), Path("/src/b")])
    assert [(t.key, t.label) for t in two[1:]] == [
        ("pg-baseline", "agentd PostgreSQL (baseline a)"),
        ("pg-baseline2", "agentd PostgreSQL (baseline b)"),
    ]


def run_with_baseline() -> dict[str, Any]:
    data = results()
    data["pg-baseline"] = {"W1-c32": entry(runs_per_s=200.0, p99_ms=50.0, cpu_ms_per_run=2.0)}
    data["pg"]["W1-c32"] = entry(runs_per_s=260.0, p99_ms=40.0, cpu_ms_per_run=1.5)
    meta = {
        "mode": "full",
        "started": "then",
        "commit": "abc1234",
        "cpu": "cpu",
        "cores": 2,
        "python": "3.11",
        "passes": 3,
        "server_cpu": 0,
        "client_cpu": 1,
        "duration_s": 60,
        "labels": {"pg-baseline": "agentd PostgreSQL (baseline)"},
        "baselines": {"pg-baseline": {"root": "/src/agentd-main", "commit": "def5678"}},
    }
    return {"meta": meta, "results": data}


def test_the_report_shows_a_baseline_as_its_own_column_and_compares_with_it() -> None:
    data = run_with_baseline()
    assert list(labels(data).values()) == [
        "floor",
        "agentd PostgreSQL",
        "agentd SQLite",
        "agentd PostgreSQL (baseline)",
    ]
    header = table(data).splitlines()[0]
    assert header.endswith("| agentd PostgreSQL (baseline) |")
    assert against_baselines(data)[2:] == [
        "| agentd PostgreSQL / agentd PostgreSQL (baseline) | W1-c32 | "
        "runs/s 1.30x, p99 0.80x, CPU ms/run 0.75x |"
    ]
    text = markdown(data)
    assert "agentd PostgreSQL (baseline): served from /src/agentd-main at def5678" in text
    # Bars are this checkout's: the baseline's figures never count against them.
    assert "(baseline) | W1" not in "\n".join(targets(data["results"]))


def test_a_traced_twin_follows_each_agentd_target_of_this_checkout() -> None:
    chosen = with_baselines([t for t in TARGETS if t.key in ("floor", "pg")], [Path("/src/m")])
    assert with_traced(chosen, False) == chosen
    twins = with_traced(chosen, True)
    assert [(t.key, t.label, t.traced) for t in twins] == [
        ("floor", "floor", False),
        ("pg", "agentd PostgreSQL", False),
        ("pg-traced", "agentd PostgreSQL, traced", True),
        ("pg-baseline", "agentd PostgreSQL (baseline)", False),  # a baseline gets no twin
    ]
    assert (twins[2].database, twins[2].root) == ("pg", None)


def test_the_report_gives_each_traced_twins_cost_against_its_bar() -> None:
    data = run_with_baseline()
    data["results"]["pg-traced"] = {
        "W1-c32": entry(runs_per_s=247.0, cpu_ms_per_run=1.71),  # +14%
        "W2-c32": entry(runs_per_s=90.0, cpu_ms_per_run=3.0),
    }
    data["results"]["pg"]["W2-c32"] = entry(runs_per_s=100.0, cpu_ms_per_run=2.5)  # +20%
    data["meta"]["labels"]["pg-traced"] = "agentd PostgreSQL, traced"
    data["meta"]["tracing_spans"] = {"pg-traced": {"exported": 900.0, "dropped_queue_full": 0.0}}
    lines = tracing_cost(data)
    assert lines[2:4] == [
        "| agentd PostgreSQL, traced | W1-c32 | 1.50 -> 1.71 (+14.0%) | holds |"
        " 260 -> 247 (-5.0%) |",
        "| agentd PostgreSQL, traced | W2-c32 | 2.50 -> 3.00 (+20.0%) | **missed** |"
        " 100 -> 90 (-10.0%) |",
    ]
    assert lines[-1] == "- spans, agentd PostgreSQL, traced: exported 900, dropped_queue_full 0"
    assert "## Tracing" in markdown(data)
    assert tracing_cost(run_with_baseline()) == []


def test_a_keyed_twin_follows_each_agentd_target_of_this_checkout_and_is_held_to_its_bar() -> None:
    chosen = with_traced([t for t in TARGETS if t.key in ("floor", "sqlite")], True)
    assert with_keyed(chosen, False) == chosen
    assert [(t.key, t.keyed) for t in with_keyed(chosen, True)] == [
        ("floor", False),
        ("sqlite", False),
        ("sqlite-keyed", True),
        ("sqlite-traced", False),  # a traced twin gets no keyed twin
    ]
    data = run_with_baseline()
    data["results"]["pg-keyed"] = {
        "W1-c32": entry(runs_per_s=255.0, cpu_ms_per_run=1.56),  # +4%
        "W2-c32": entry(runs_per_s=95.0, cpu_ms_per_run=2.75),  # +10%
    }
    data["results"]["pg"]["W2-c32"] = entry(runs_per_s=100.0, cpu_ms_per_run=2.5)
    data["meta"]["labels"]["pg-keyed"] = "agentd PostgreSQL, keyed"
    assert auth_cost(data)[2:4] == [
        "| agentd PostgreSQL, keyed | W1-c32 | 1.50 -> 1.56 (+4.0%) | holds | 260 -> 255 (-1.9%) |",
        "| agentd PostgreSQL, keyed | W2-c32 | 2.50 -> 2.75 (+10.0%) | **missed** |"
        " 100 -> 95 (-5.0%) |",
    ]
    assert "## Credentials" in markdown(data)
    assert auth_cost(run_with_baseline()) == []


def test_the_call_count_diff_lists_the_functions_that_changed_most_first() -> None:
    def counted(auth: str, functions: dict[str, float]) -> dict[str, Any]:
        total = sum(functions.values())
        return {"point": "W1-c32", "target": "sqlite", "auth": auth, "calls_per_run": total,
                "other_cpu_ms_per_run": 1.0, "functions": functions}  # fmt: skip

    a = counted(
        "none", {"f (/src/a/app/x.py:1)": 10.0, "g (/src/a/app/y.py:2)": 5.0, "same (z:1)": 3.0}
    )
    # Another checkout, where f moved down a line: still the same function.
    b = counted(
        "key", {"f (/src/b/app/x.py:2)": 11.0, "g (/src/b/app/y.py:2)": 1.0, "same (z:1)": 3.0}
    )
    lines = diff(a, b, top=10).splitlines()
    assert "(0.833x)" in lines[1]
    assert lines[3:] == ["       -4.0  g (app/y.py)", "       +1.0  f (app/x.py)"]


def test_points_the_fake_model_answers_alike_are_measured_together() -> None:
    from bench.runner import groups

    keys = [
        "W1-c1",
        "W1-c32",
        "W2-c32",
        "W2chat-c32",
        "W2agui-c32",
        "W3-c32",
        "W4-c256",
        "W4-c1024",
    ]
    chosen = [next(p for p in POINTS if p.key == key) for key in keys]
    assert [[p.key for p in group] for group in groups(chosen)] == [
        ["W1-c1", "W1-c32"],
        ["W2-c32", "W2chat-c32", "W2agui-c32"],
        ["W3-c32"],
        ["W4-c256"],
        ["W4-c1024"],
    ]
