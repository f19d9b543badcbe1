"""Folding constant expressions: integer sizes and numeric arguments.

Sizes are integer arithmetic over other sizes (`NV - NW + 1`, `NH / pool`);
initialiser arguments and exponents are numbers that may use sizes too.
"""

from __future__ import annotations

import math
from typing import Callable

from ..errors import DSLShapeError, DSLError
from ..frontend import ast

# What a non-size name is, for messages ("'W' is a parameter, not a size").
Describe = Callable[[str], "str | None"]


def size_value(expr: ast.Expr, sizes: dict[str, int], describe: Describe, what: str = "size") -> int:
    """Evaluate a size expression to a positive integer."""
    value = _integer(expr, sizes, describe)
    if value <= 0:
        named = _size_names(expr)
        given = f" (from {', '.join(f'{n}={sizes[n]}' for n in named)})" if named else ""
        raise DSLShapeError(f"{what} must be a positive integer, got {value}{given}", expr.span)
    return value


def _size_names(expr: ast.Expr) -> list[str]:
    """The sizes an arithmetic size expression reads, in order, each once (for messages)."""
    if isinstance(expr, ast.Name):
        return [expr.name]
    parts = [expr.operand] if isinstance(expr, ast.Neg) else [expr.left, expr.right] if isinstance(expr, ast.BinOp) else []
    return list(dict.fromkeys(name for part in parts for name in _size_names(part)))


def _integer(expr: ast.Expr, sizes: dict[str, int], describe: Describe) -> int:
    if isinstance(expr, ast.Number):
        if isinstance(expr.value, float):
            raise DSLShapeError(f"sizes are integers, got {expr.value:g}", expr.span)
        return expr.value
    if isinstance(expr, ast.Name):
        if expr.name in sizes:
            return sizes[expr.name]
        kind = describe(expr.name)
        if kind:
            raise DSLShapeError(f"'{expr.name}' is {kind}, not a size", expr.span)
        raise DSLError(f"unknown size '{expr.name}'", expr.span)
    if isinstance(expr, ast.Neg):
        return -_integer(expr.operand, sizes, describe)
    if isinstance(expr, ast.BinOp) and expr.op in "+-*/":
        left = _integer(expr.left, sizes, describe)
        right = _integer(expr.right, sizes, describe)
        if expr.op == "+":
            return left + right
        if expr.op == "-":
            return left - right
        if expr.op == "*":
            return left * right
        if right == 0 or left % right:
            raise DSLShapeError(f"size {left}/{right} is not a whole number", expr.span)
        return left // right
    raise DSLShapeError("a size is integer arithmetic (+ - * /) on numbers and sizes", expr.span)


def numeric_value(expr: ast.Expr, sizes: dict[str, int], describe: Describe, what: str = "a number") -> float:
    """Evaluate a numeric constant (initialiser argument, exponent); sizes count as numbers.

    `what` names the expected value in messages ("a constant exponent").
    The result is always finite and fits in a float.
    """
    if isinstance(expr, ast.Number):
        return expr.value
    if isinstance(expr, ast.Name):
        if expr.name in sizes:
            return _finite(sizes[expr.name], expr.span)
        kind = describe(expr.name)
        if kind:
            raise DSLError(f"expected {what} here, but '{expr.name}' is {kind}", expr.span)
        raise DSLError(f"unknown name '{expr.name}'", expr.span)
    if isinstance(expr, ast.Neg):
        return -numeric_value(expr.operand, sizes, describe, what)
    if isinstance(expr, ast.BinOp):
        left = numeric_value(expr.left, sizes, describe, what)
        right = numeric_value(expr.right, sizes, describe, what)
        if expr.op == "/" and right == 0:
            raise DSLError("division by zero", expr.span)
        if expr.op == "^" and left == 0 and right < 0:
            raise DSLError("zero to a negative power", expr.span)
        try:
            result = {"+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
                      "/": lambda: left / right, "^": lambda: float(left) ** float(right)}[expr.op]()
        except OverflowError:
            raise DSLError("number too large", expr.span) from None
        if isinstance(result, complex):
            raise DSLError("a negative number to a fractional power", expr.span)
        return _finite(result, expr.span)
    raise DSLError(f"expected {what}: a number, a size or arithmetic on them", expr.span)


def _finite(value: int | float, span) -> int | float:
    """`value` if it fits in a float, else a DSLError: later stages compute in floats."""
    try:
        fits = math.isfinite(float(value))
    except OverflowError:
        fits = False
    if not fits:
        raise DSLError("number too large", span)
    return value
