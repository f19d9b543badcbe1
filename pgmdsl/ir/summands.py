"""Energy and let expressions to IR summands.

A sum is split at its top-level + and -; each piece is a summand, summed over
its own indices. A call of a `term` definition stands for the summands of its
body with the arguments substituted, so it may appear only as a whole summand.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

from ..errors import DSLError, DSLNameError, DSLShapeError
from ..frontend import ast
from . import expr as ir
from .indices import Occurrence, extents
from .names import check_identifier, suggestion


if TYPE_CHECKING:
    from .model import Summand

class Scope(Protocol):
    """What the expression builder needs to know about a model's names."""

    sizes: dict[str, int]
    terms: dict  # name -> (ast.TermDef, term scope with its own `terms`)

    def kind(self, name: str) -> str | None: ...  # "layer" | "param" | "let" | None

    def shape(self, name: str) -> tuple[int, ...]: ...

    def depends_on_layers(self, name: str) -> bool: ...

    def describe(self, name: str) -> str | None: ...

    def known_names(self) -> list[str]: ...


MAX_TERM_NESTING = 32  # as build.MAX_NESTING: terms calling terms calling terms...
# Functions applied to functions: sympy differentiates them recursively (and the product rule makes each
# derivative longer), so a chain the parser still accepts would end in a RecursionError or take minutes.
MAX_FUNCTION_NESTING = 8


@dataclasses.dataclass(frozen=True)
class Piece:
    """A summand before conversion: its AST, its sign and the term it came from."""

    expr: ast.Expr
    negated: bool
    via: tuple[str, ...] = ()
    call_span: object = None


def split(expr: ast.Expr, scope: Scope, negated: bool = False, via: tuple[str, ...] = (), call_span=None) -> list[Piece]:
    """Split a sum into signed pieces, expanding term calls that stand as summands."""
    if isinstance(expr, ast.BinOp) and expr.op in "+-":
        left = split(expr.left, scope, negated, via, call_span)
        return left + split(expr.right, scope, negated != (expr.op == "-"), via, call_span)
    if isinstance(expr, ast.Neg):
        return split(expr.operand, scope, not negated, via, call_span)
    if isinstance(expr, ast.Call) and expr.func in scope.terms:
        return _expand_term(expr, scope, negated, via, call_span or expr.span)
    return [Piece(expr, negated, via, call_span)]


def _expand_term(call: ast.Call, scope: Scope, negated: bool, via: tuple[str, ...], call_span) -> list[Piece]:
    definition, term_scope = scope.terms[call.func]
    if call.func in via:
        chain = " -> ".join(via + (call.func,))
        raise DSLError(f"term '{call.func}' calls itself ({chain})", call.span)
    if len(via) >= MAX_TERM_NESTING:
        raise DSLError(
            f"term calls nested too deeply: '{via[0]}' goes through more than {MAX_TERM_NESTING} terms, "
            "each calling the next",
            call.span,
        )
    if call.keywords:
        raise DSLError(f"term '{call.func}' takes its arguments by position", call.keywords[0].span)
    if len(call.args) != len(definition.params):
        raise DSLError(
            f"term '{call.func}' takes {len(definition.params)} arguments "
            f"({', '.join(p.name for p in definition.params)}), got {len(call.args)}",
            call.span,
        )
    mapping = {}
    for param, arg in zip(definition.params, call.args):
        if not isinstance(arg, ast.Name) or scope.kind(arg.name) is None:
            raise DSLError(
                f"argument '{param.name}' of term '{call.func}' must be the name of a layer, parameter or let",
                arg.span,
            )
        mapping[param.name] = arg.name
    body = _rename(definition.body, mapping, _fresh_indices(definition.body, scope))
    inner = _TermScope(scope, term_scope.terms)
    return split(body, inner, negated, via + (call.func,), call_span)


class _TermScope:
    """The caller's names with the term definition's own file of terms."""

    def __init__(self, outer: Scope, terms: dict):
        self._outer = outer
        self.terms = terms
        self.sizes = outer.sizes

    def __getattr__(self, name):
        return getattr(self._outer, name)


def _fresh_indices(body: ast.Expr, scope: Scope) -> dict[str, str]:
    """New names for the body's indices that the caller's names would capture.

    A term's `k` is its own summation index even where the calling model has
    a size or a tensor called `k`; without this, `L[i, k]` would silently
    read as `L[i, 2]`.
    """
    indices = _index_names(body)
    taken = set(scope.known_names()) | set(scope.terms) | set(indices)
    fresh = {}
    for name in sorted(indices):
        if name in scope.known_names():
            number = 2
            while f"{name}{number}" in taken:
                number += 1
            fresh[name] = f"{name}{number}"
            taken.add(fresh[name])
    return fresh


def _index_names(node) -> set[str]:
    if isinstance(node, ast.Indexed):
        return {name for index in node.indices for name in _plain_names(index)}
    if isinstance(node, ast.BinOp):
        return _index_names(node.left) | _index_names(node.right)
    if isinstance(node, ast.Neg):
        return _index_names(node.operand)
    if isinstance(node, ast.Call):
        return set().union(*(_index_names(a) for a in node.args))
    return set()


def _plain_names(node) -> set[str]:
    if isinstance(node, ast.Name):
        return {node.name}
    if isinstance(node, ast.BinOp):
        return _plain_names(node.left) | _plain_names(node.right)
    if isinstance(node, ast.Neg):
        return _plain_names(node.operand)
    return set()


def _rename(node, mapping: dict[str, str], indices: dict[str, str]):
    """The term body with arguments replaced by the caller's names and indices made fresh."""
    if isinstance(node, ast.Name) and node.name in mapping:
        return dataclasses.replace(node, name=mapping[node.name])
    if isinstance(node, ast.Indexed):
        renamed = tuple(_rename_index(i, indices) for i in node.indices)
        return dataclasses.replace(node, name=mapping.get(node.name, node.name), indices=renamed)
    if isinstance(node, ast.BinOp):
        return dataclasses.replace(
            node, left=_rename(node.left, mapping, indices), right=_rename(node.right, mapping, indices)
        )
    if isinstance(node, ast.Neg):
        return dataclasses.replace(node, operand=_rename(node.operand, mapping, indices))
    if isinstance(node, ast.Call):
        return dataclasses.replace(node, args=tuple(_rename(a, mapping, indices) for a in node.args))
    return node


def _rename_index(node, indices: dict[str, str]):
    if isinstance(node, ast.Name) and node.name in indices:
        return dataclasses.replace(node, name=indices[node.name])
    if isinstance(node, ast.BinOp):
        return dataclasses.replace(
            node, left=_rename_index(node.left, indices), right=_rename_index(node.right, indices)
        )
    if isinstance(node, ast.Neg):
        return dataclasses.replace(node, operand=_rename_index(node.operand, indices))
    return node


class SummandBuilder:
    """Converts pieces to checked IR summands in the names of one model."""

    def __init__(self, scope: Scope):
        self.scope = scope
        self._calls = 0  # functions open around the node being converted

    def build(self, piece: Piece, free: tuple[str, ...] = (), energy: bool = True) -> "Summand":
        try:
            return self._build(piece, free, energy)
        except DSLError as error:
            if piece.via:
                note = f"in term '{' -> '.join(piece.via)}' called at {piece.call_span}"
                raise type(error)(error.message, error.span, error.notes + (note,)) from None
            raise

    def _build(self, piece: Piece, free, energy):
        from .model import Summand

        occurrences: list[Occurrence] = []
        converted = self._convert(piece.expr, occurrences)
        if piece.negated:
            converted = ir.Neg(converted)
        ranges = extents(occurrences)
        summed = tuple(name for name in ranges if name not in free)
        if energy:
            self._check_indices_touch_layers(
                converted, ranges, "is left free", "every index of an energy term must index a layer"
            )
        return Summand(converted, tuple(ranges.items()), summed, piece.expr.span)

    def check_let_summand(self, summand: "Summand") -> None:
        """The energy's rule for the indices a let sums over, when the let reads layers.

        Such a let stands for its body inside the energy terms that use it, so
        `let u[k] = x[i] * R[g,k]` is refused as `-x[i] * R[g,k] * h[k]` is: the
        sum over g of R alone is a typo far more often than it is meant.
        """
        if any(ref.kind == "layer" or self.scope.depends_on_layers(ref.name) for ref in summand.refs()):
            self._check_indices_touch_layers(
                summand.expr, summand.summed, "is summed over",
                "in a let that reads layers, every index not on its left must index a layer",
            )

    def _check_indices_touch_layers(self, expr, names, what: str, rule: str) -> None:
        """Every index in `names` must index a layer (or a let that reads one) somewhere in `expr`."""
        touching = set()
        for ref in ir.refs(expr):
            if ref.kind == "layer" or self.scope.depends_on_layers(ref.name):
                for affine in ref.indices:
                    touching.update(affine.names)
        for name in names:
            if name not in touching:
                ref = next(r for r in ir.refs(expr) if any(name in a.names for a in r.indices))
                raise DSLShapeError(
                    f"index '{name}' {what}: it appears only in {ref}, which is not a layer; {rule}",
                    ref.span,
                )

    # ---- conversion ----
    def _convert(self, node: ast.Expr, occ: list[Occurrence]) -> ir.Expr:
        if isinstance(node, ast.Number):
            return ir.Const(node.value)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Indexed):
            return self._indexed(node, occ)
        if isinstance(node, ast.Call):
            return self._call(node, occ)
        if isinstance(node, ast.Neg):
            return ir.Neg(self._convert(node.operand, occ))
        if node.op == "^":
            return ir.Pow(self._convert(node.left, occ), self._exponent(node.right))
        left, right = self._convert(node.left, occ), self._convert(node.right, occ)
        if node.op == "+":
            return ir.Add((left, right))
        if node.op == "-":
            return ir.Add((left, ir.Neg(right)))
        if node.op == "*":
            return ir.Mul((left, right))
        return ir.Div(left, right)

    def _exponent(self, node: ast.Expr) -> int | float:
        from .constants import numeric_value

        value = numeric_value(node, self.scope.sizes, self.scope.describe, "a constant exponent")
        return int(value) if float(value).is_integer() else value

    def _unknown(self, name: str, span) -> DSLNameError:
        return DSLNameError(f"unknown name '{name}'{suggestion(name, self.scope.known_names())}", span)

    def _name(self, node: ast.Name) -> ir.Expr:
        if node.name in self.scope.sizes:
            return ir.Const(self.scope.sizes[node.name])
        kind = self.scope.kind(node.name)
        if kind is None:
            if node.name in ir.FUNCTIONS or node.name in self.scope.terms:
                raise DSLError(f"'{node.name}' is a function: call it with arguments in parentheses", node.span)
            raise self._unknown(node.name, node.span)
        shape = self.scope.shape(node.name)
        if shape:
            raise DSLShapeError(
                f"wrong number of indices: {node.name} has {len(shape)} "
                f"{'axis' if len(shape) == 1 else 'axes'} but is written with none",
                node.span,
            )
        return ir.Ref(node.name, kind, (), node.span)

    def _indexed(self, node: ast.Indexed, occ: list[Occurrence]) -> ir.Ref:
        kind = self.scope.kind(node.name)
        if kind is None:
            if node.name in self.scope.sizes:
                raise DSLError(f"'{node.name}' is a size and cannot be indexed", node.span)
            raise self._unknown(node.name, node.span)
        shape = self.scope.shape(node.name)
        if len(shape) != len(node.indices):
            raise DSLShapeError(
                f"wrong number of indices: {node.name} has {len(shape)} "
                f"{'axis' if len(shape) == 1 else 'axes'} but is written with {len(node.indices)}",
                node.span,
            )
        affines = tuple(self._affine(index) for index in node.indices)
        ref = ir.Ref(node.name, kind, affines, node.span)
        for axis, (affine, index) in enumerate(zip(affines, node.indices)):
            occ.append(Occurrence(affine, axis, shape[axis], str(ref), node.name, index.span))
        return ref

    def _affine(self, node: ast.Expr) -> ir.Affine:
        terms, offset = self._affine_parts(node)
        merged: dict[str, int] = {}
        for name, coef in terms:
            merged[name] = merged.get(name, 0) + coef
        return ir.Affine(tuple((n, c) for n, c in merged.items() if c), offset)

    def _affine_parts(self, node: ast.Expr) -> tuple[list[tuple[str, int]], int]:
        if isinstance(node, ast.Number) and isinstance(node.value, int):
            return [], node.value
        if isinstance(node, ast.Name):
            if node.name in self.scope.sizes:
                return [], self.scope.sizes[node.name]
            if self.scope.kind(node.name) is not None:
                raise DSLError(f"'{node.name}' is {self.scope.describe(node.name)} and cannot be used as an index", node.span)
            check_identifier(ast.Identifier(node.name, node.span), "index")
            return [(node.name, 1)], 0
        if isinstance(node, ast.Neg):
            terms, offset = self._affine_parts(node.operand)
            return [(n, -c) for n, c in terms], -offset
        if isinstance(node, ast.BinOp) and node.op in "+-":
            lt, lo = self._affine_parts(node.left)
            rt, ro = self._affine_parts(node.right)
            sign = 1 if node.op == "+" else -1
            return lt + [(n, sign * c) for n, c in rt], lo + sign * ro
        if isinstance(node, ast.BinOp) and node.op == "*":
            lt, lo = self._affine_parts(node.left)
            rt, ro = self._affine_parts(node.right)
            if lt and rt:
                raise DSLError("an index expression is affine: indices cannot be multiplied together", node.span)
            scale, (terms, offset) = (lo, (rt, ro)) if not lt else (ro, (lt, lo))
            return [(n, scale * c) for n, c in terms], scale * offset
        raise DSLError("an index must be an affine expression of indices and integers (such as y + r)", node.span)

    def _call(self, node: ast.Call, occ: list[Occurrence]) -> ir.Expr:
        if node.func in self.scope.terms:
            raise DSLError(
                f"term '{node.func}' must stand as a whole summand of the energy (optionally negated)",
                node.span,
            )
        if node.func not in ir.FUNCTIONS:
            known = list(ir.FUNCTIONS) + list(self.scope.terms)
            raise DSLNameError(f"unknown function '{node.func}'{suggestion(node.func, known)}", node.span)
        if node.keywords or len(node.args) != 1:
            raise DSLError(f"function '{node.func}' takes exactly one argument", node.span)
        if self._calls >= MAX_FUNCTION_NESTING:
            raise DSLError(
                f"functions nested too deeply: more than {MAX_FUNCTION_NESTING} calls one inside the other", node.span
            )
        self._calls += 1
        try:
            return ir.Func(node.func, self._convert(node.args[0], occ))
        finally:
            self._calls -= 1
