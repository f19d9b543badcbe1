"""The scalar form of a summand: a sympy expression in one symbol per indexed reference.

`-v[i]*W[i,j]*h[j]` becomes `-v_i*W_ij*h_j` with three atoms, each remembering
the array and the index expressions it stands for. sympy differentiates and
simplifies these scalars; the index bookkeeping stays here, outside sympy
(its Indexed/Sum calculus gives KroneckerDelta forms that do not convert
cleanly to array code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from math import comb

import sympy

from .. import units
from ..errors import DSLUnsupportedError
from ..ir import expr as ir
from ..ir.model import ModelIR, Summand
from ..source import SourceSpan
from .functions import FUNCTIONS


@dataclass(frozen=True)
class Atom:
    """One array read at some indices: a layer, a parameter, a let or a computed temporary."""

    name: str
    kind: str  # layer | param | let | temp
    indices: tuple[ir.Affine, ...]
    batched: bool  # the array has a leading batch axis

    @property
    def index_names(self) -> tuple[str, ...]:
        names: list[str] = []
        for affine in self.indices:
            for name in affine.names:
                if name not in names:
                    names.append(name)
        return tuple(names)

    def __str__(self) -> str:
        if not self.indices:
            return self.name
        return f"{self.name}[{', '.join(str(i) for i in self.indices)}]"


@dataclass
class ScalarForm:
    """sum over `extents` (minus `free`) of `expr`, with `atoms` naming its symbols."""

    expr: sympy.Expr
    atoms: dict[sympy.Symbol, Atom]
    extents: dict[str, int]
    free: tuple[str, ...] = ()
    label: str = ""  # where it comes from, for comments: "interaction (rbm.dgm:11)"
    span: SourceSpan | None = field(default=None, compare=False)  # the summand, for errors with a caret


class SymbolTable:
    """Creates one sympy symbol per distinct (array, indices), with sign assumptions."""

    def __init__(self, model: ModelIR, positive_lets: frozenset[str] = frozenset()):
        self.model = model
        self.positive_lets = positive_lets
        self._symbols: dict[tuple, sympy.Symbol] = {}

    def symbol(self, atom: Atom) -> sympy.Symbol:
        key = (atom.name, atom.indices, atom.kind)
        if key not in self._symbols:
            self._symbols[key] = sympy.Symbol(f"{atom}#{len(self._symbols)}", **self._assumptions(atom))
        return self._symbols[key]

    def _assumptions(self, atom: Atom) -> dict:
        if atom.kind == "layer":
            unit = units.get(self.model.layer(atom.name).unit)  # None for an input layer without a type
            return {"nonnegative": True} if unit is not None and unit.nonnegative else {"real": True}
        if atom.kind == "let" and atom.name in self.positive_lets:
            return {"positive": True}
        return {"real": True}


def batched(model: ModelIR, name: str, kind: str) -> bool:
    """Whether an array carries the batch axis: layers and lets that depend on layers."""
    if kind == "layer":
        return True
    if kind == "let":
        return _batched_let(model, name)
    return False


@lru_cache(maxsize=4096)
def _batched_let(model: ModelIR, name: str) -> bool:
    return any(batched(model, r.name, r.kind) for s in model.let(name).summands for r in s.refs())


def scalar_form(model: ModelIR, summand: Summand, table: SymbolTable, free=(), label="") -> ScalarForm:
    atoms: dict[sympy.Symbol, Atom] = {}

    def convert(node: ir.Expr) -> sympy.Expr:
        if isinstance(node, ir.Const):
            value = node.value
            return sympy.Integer(value) if float(value).is_integer() else sympy.Float(value)
        if isinstance(node, ir.Ref):
            atom = Atom(node.name, node.kind, node.indices, batched(model, node.name, node.kind))
            symbol = table.symbol(atom)
            atoms[symbol] = atom
            return symbol
        if isinstance(node, ir.Add):
            return sympy.Add(*[convert(t) for t in node.terms])
        if isinstance(node, ir.Mul):
            return sympy.Mul(*[convert(f) for f in node.factors])
        if isinstance(node, ir.Div):
            return convert(node.numerator) / convert(node.denominator)
        if isinstance(node, ir.Pow):
            exponent = node.exponent
            power = sympy.Integer(exponent) if float(exponent).is_integer() else sympy.Float(exponent)
            return convert(node.base) ** power
        if isinstance(node, ir.Neg):
            return -convert(node.operand)
        return FUNCTIONS[node.name](convert(node.arg))

    expr = reduce_powers(model, convert(summand.expr), atoms, label)
    return ScalarForm(expr, atoms, dict(summand.extents), tuple(free), label, summand.span)


# Most terms a summand may be multiplied out into. `(v[i] - a[i])^2` makes three; a power of a sum
# makes a multinomial number of them, and (v[i] + a[i])^100000 would keep sympy busy for ever.
MAX_EXPANDED_TERMS = 100


def reduce_powers(model: ModelIR, expr: sympy.Expr, atoms: dict[sympy.Symbol, Atom], label: str) -> sympy.Expr:
    """Use the units' algebra (UnitType.algebra): x^n = x for idempotent values {0, 1}, s^2 = 1 for
    involutions {-1, 1} (`label`: for errors)."""
    replacements = {}
    for symbol, atom in atoms.items():
        if atom.kind != "layer":
            continue
        unit = units.get(model.layer(atom.name).unit)
        if unit is not None and unit.algebra:
            replacements[symbol] = unit.algebra
    if not replacements:
        return expr

    def rule(base, exponent):
        kind = replacements.get(base)
        if kind is None or not exponent.is_Integer or exponent <= 0:
            return None
        return base if kind == "idempotent" or exponent % 2 else sympy.Integer(1)

    expanded = expr
    if any(isinstance(p, sympy.Pow) and p.base in replacements for p in expr.atoms(sympy.Pow)):
        if _expanded_terms(expr) > MAX_EXPANDED_TERMS:
            raise DSLUnsupportedError(
                f"multiplying out the summand would make more than {MAX_EXPANDED_TERMS} terms ({label}): "
                "lower the powers of sums in it"
            )
        expanded = sympy.expand(expr)
    return expanded.replace(
        lambda e: isinstance(e, sympy.Pow) and rule(e.base, e.exp) is not None,
        lambda e: rule(e.base, e.exp),
    )


def _expanded_terms(expr: sympy.Expr) -> int:
    """How many terms sympy.expand makes of `expr` at most, counted without expanding (capped just above
    MAX_EXPANDED_TERMS): sums add, products multiply, the n-th power of k terms makes C(n + k - 1, k - 1)."""
    cap = MAX_EXPANDED_TERMS + 1
    if expr.is_Add:
        return min(sum(_expanded_terms(term) for term in expr.args), cap)
    if expr.is_Mul:
        count = 1
        for factor in expr.args:
            count = min(count * _expanded_terms(factor), cap)
        return count
    if expr.is_Pow and expr.exp.is_Integer and abs(expr.exp) > 1:
        base, power = _expanded_terms(expr.base), abs(int(expr.exp))
        if base == 1:
            return 1
        return cap if power >= cap else min(comb(power + base - 1, base - 1), cap)
    # A function's argument is expanded too (it stays one term outside).
    return 1 if all(_expanded_terms(arg) < cap for arg in expr.args) else cap
