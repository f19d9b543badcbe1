"""Resolved expressions of the model IR.

Every name is resolved to what it refers to (a layer, a parameter or a tensor
let), sizes are folded into numbers and index expressions are affine forms.
The symbolic stage turns these trees into sympy; nothing here evaluates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ..source import SourceSpan


@dataclass(frozen=True)
class Affine:
    """An index expression sum(coef * index) + offset, such as `y + r` or `2*x`."""

    terms: tuple[tuple[str, int], ...]
    offset: int = 0

    @property
    def plain(self) -> str | None:
        """The index name when the expression is just one index, else None."""
        if self.offset == 0 and len(self.terms) == 1 and self.terms[0][1] == 1:
            return self.terms[0][0]
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.terms)

    def __str__(self) -> str:
        parts = []
        for name, coef in self.terms:
            text = name if abs(coef) == 1 else f"{abs(coef)}*{name}"
            parts.append(("-" if coef < 0 else "+", text))
        if self.offset or not parts:
            parts.append(("-" if self.offset < 0 else "+", str(abs(self.offset))))
        first_sign, first = parts[0]
        text = ("-" if first_sign == "-" else "") + first
        return text + "".join(f"{sign}{t}" for sign, t in parts[1:])


@dataclass(frozen=True)
class Const:
    value: int | float


@dataclass(frozen=True)
class Ref:
    """A layer, parameter or let, indexed (or a scalar when `indices` is empty)."""

    name: str
    kind: str  # "layer" | "param" | "let"
    indices: tuple[Affine, ...]
    span: SourceSpan

    def __str__(self) -> str:
        if not self.indices:
            return self.name
        return f"{self.name}[{', '.join(str(i) for i in self.indices)}]"


@dataclass(frozen=True)
class Add:
    terms: tuple["Expr", ...]


@dataclass(frozen=True)
class Mul:
    factors: tuple["Expr", ...]


@dataclass(frozen=True)
class Div:
    numerator: "Expr"
    denominator: "Expr"


@dataclass(frozen=True)
class Pow:
    base: "Expr"
    exponent: int | float


@dataclass(frozen=True)
class Neg:
    operand: "Expr"


@dataclass(frozen=True)
class Func:
    """An elementwise function of a scalar: exp, log, softplus and the like."""

    name: str
    arg: "Expr"


Expr = Const | Ref | Add | Mul | Div | Pow | Neg | Func

# Elementwise functions an energy may use, with how they read in math.
FUNCTIONS = ("exp", "log", "sqrt", "softplus", "sigmoid", "tanh", "cosh", "abs")


def children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, Add):
        return expr.terms
    if isinstance(expr, Mul):
        return expr.factors
    if isinstance(expr, Div):
        return (expr.numerator, expr.denominator)
    if isinstance(expr, (Pow,)):
        return (expr.base,)
    if isinstance(expr, (Neg,)):
        return (expr.operand,)
    if isinstance(expr, Func):
        return (expr.arg,)
    return ()


def refs(expr: Expr) -> Iterator[Ref]:
    """Every Ref in the expression, depth first."""
    if isinstance(expr, Ref):
        yield expr
    for child in children(expr):
        yield from refs(child)


def _number(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def to_text(expr: Expr, parent: int = 0) -> str:
    """The expression written back in .dgm notation (for summaries and messages)."""
    if isinstance(expr, Const):
        text, level = _number(expr.value), 4
    elif isinstance(expr, Ref):
        text, level = str(expr), 4
    elif isinstance(expr, Func):
        text, level = f"{expr.name}({to_text(expr.arg)})", 4
    elif isinstance(expr, Pow):
        text, level = f"{to_text(expr.base, 4)}^{_number(expr.exponent)}", 3
    elif isinstance(expr, Neg):
        text, level = f"-{to_text(expr.operand, 2)}", 2
    elif isinstance(expr, Mul):
        text, level = "*".join(to_text(f, 2) for f in expr.factors), 2
    elif isinstance(expr, Div):
        text, level = f"{to_text(expr.numerator, 2)}/{to_text(expr.denominator, 3)}", 2
    else:
        pieces = [to_text(t, 1) for t in expr.terms]
        text = _join_sum(pieces)
        level = 1
    return f"({text})" if level < parent else text


def _join_sum(pieces: list[str]) -> str:
    text = pieces[0]
    for piece in pieces[1:]:
        text += f" - {piece[1:]}" if piece.startswith("-") else f" + {piece}"
    return text
