"""The built-in tools: a calculator that never evaluates code, and the time."""

from __future__ import annotations

import contextlib
import re
import time

import pytest

from app.engine.builtin_tools import CalculatorError, calculator, current_time

from .helpers import Models, ScriptedModel, agent, calls_reply, make_runner, run


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(2 + 3) * 4 ** 2", 80),
        ("7 // 2", 3),
        ("-7 % 3", 2),
        ("2 ** -1", 0.5),
        ("-(3 - 5)", 2),
        ("+4", 4),
        ("1 / 4", 0.25),
        ("2 ** 10 ** 2", str(2**100)),  # beyond 64 bits: a string
        ("2 ** 62", 2**62),
        ("  1.5e3 + 0.5 ", 1500.5),
    ],
)
def test_calculator_computes(expression: str, value: float | str) -> None:
    assert calculator(expression) == value


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('true')", "unsupported syntax: Call"),
        ("a + 1", "unsupported syntax: Name"),
        ("(1).__class__", "unsupported syntax: Attribute"),
        ("'a' * 3", "only numbers"),
        ("True + 1", "only numbers"),
        ("[1, 2]", "unsupported syntax: List"),
        ("lambda: 1", "unsupported syntax: Lambda"),
        ("1 if 1 else 2", "unsupported syntax: IfExp"),
        ("1 < 2", "unsupported syntax: Compare"),
        ("2 ** 100000", "exponent larger"),
        ("9 ** 9 ** 9", "exponent larger"),
        ("99 ** 9999", "result too large"),
        ("10.0 ** 400", "result too large"),
        ("1e308 * 10", "result too large"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 +", "not a valid arithmetic expression"),
        ("-" * 100 + "1", "nested too deeply"),
        ("(" * 240 + "1" + ")" * 240, "not a valid arithmetic expression"),
        ("1+" * 300 + "1", "longer than 500"),
        ("1j", "only numbers"),
    ],
)
def test_calculator_refuses(expression: str, reason: str) -> None:
    with pytest.raises(CalculatorError, match=re.escape(reason)):
        calculator(expression)


def test_calculator_is_fast_on_hostile_input() -> None:
    started = time.monotonic()
    for expression in ("9 ** 9 ** 9 ** 9", "2 ** 4096 * 2 ** 4096", "-" * 499 + "1"):
        with contextlib.suppress(CalculatorError):
            calculator(expression)
    assert time.monotonic() - started < 0.5


def test_current_time() -> None:
    assert current_time().endswith("+00:00")
    assert current_time("Asia/Tokyo").endswith("+09:00")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        current_time("Mars/Olympus")
    with pytest.raises(ValueError, match="unknown time zone"):
        current_time("../../etc/passwd")


async def test_builtins_through_the_loop() -> None:
    from app.engine.tools import default_registry

    script = ScriptedModel(
        [
            calls_reply(
                ("c1", "calculator", '{"expression": "6 * 7"}'),
                ("c2", "calculator", '{"expression": "open(\\"/etc/passwd\\")"}'),
                ("c3", "current_time", '{"timezone": "Europe/Berlin"}'),
            ),
            "done",
        ]
    )
    spec = agent(model="script:m", tools=["calculator", "current_time"])
    runner = make_runner(spec, tools=default_registry, models=Models(script=script))
    result = await run(runner, spec)
    tools = {t.tool_call_id: t for t in result.last.tools}
    assert tools["c1"].result == 42 and tools["c1"].status == "completed"
    assert tools["c2"].status == "error"
    assert tools["c2"].error == "tool calculator failed: CalculatorError: unsupported syntax: Call"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", tools["c3"].result)
