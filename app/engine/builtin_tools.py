"""The built-in tools: `current_time` and a safe `calculator`.

Plain functions; `app.engine.tools` wraps and registers them in the default
registry. The calculator parses with `ast` and evaluates only numbers, the
arithmetic operators and parentheses, with bounded sizes: nothing is `eval`ed.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_EXPRESSION_LENGTH = 500
MAX_INT_BITS = 4096  # about 1,200 decimal digits
MAX_EXPONENT = 10_000
MAX_DEPTH = 50

Number = int | float


def current_time(timezone: str | None = None) -> str:
    """The current date and time as an ISO 8601 string.

    Args:
        timezone: An IANA time zone such as "Europe/Berlin"; UTC when omitted.
    """
    if not timezone:
        return datetime.now(UTC).isoformat(timespec="seconds")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}") from None
    return datetime.now(zone).isoformat(timespec="seconds")


class CalculatorError(ValueError):
    """The expression is not allowed or cannot be computed."""


_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def calculator(expression: str) -> Number | str:
    """Evaluate an arithmetic expression.

    Supports numbers, + - * / // % ** (power), unary minus and parentheses.
    Integers beyond 64 bits are answered as decimal strings.

    Args:
        expression: The expression, for example "(2 + 3) * 4 ** 2".
    """
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError):
        raise CalculatorError("not a valid arithmetic expression") from None
    except RecursionError:
        raise CalculatorError("expression nested too deeply") from None
    value = _check(_evaluate(tree.body, 0))
    # JSON tools (orjson, JavaScript) do not take integers beyond 64 bits.
    return str(value) if isinstance(value, int) and abs(value) >= 2**63 else value


def _evaluate(node: ast.expr, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise CalculatorError("expression nested too deeply")
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CalculatorError(f"only numbers are allowed, not {value!r}")
        return _check(value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_evaluate(node.operand, depth + 1)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _evaluate(node.left, depth + 1)
        right = _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            return _check(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("result too large") from None
    raise CalculatorError(f"unsupported syntax: {type(node).__name__}")


def _check_power(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponent larger than {MAX_EXPONENT}")
    integers = isinstance(base, int) and isinstance(exponent, int)
    if integers and abs(base) > 1 and exponent * int(base).bit_length() > MAX_INT_BITS:
        raise CalculatorError("result too large")
    if base == 0 and exponent < 0:
        raise CalculatorError("division by zero")


def _check(value: Number | complex) -> Number:
    if isinstance(value, complex):
        raise CalculatorError("result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("result too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("result too large")
    return value
