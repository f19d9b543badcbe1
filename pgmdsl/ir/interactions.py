"""Which layers a summand couples, and whether it couples units of one layer.

A summand couples two units of one layer when the layer appears at least
twice (degree 2 or more) and either at different indices (`v[i]*L[i,k]*v[k]`)
or through a let that sums over its units (`u[k]^2` with `u[k] = x[i]*R[i,k]`).
`x[i]^2` is degree 2 in one unit only: it couples nothing.
"""

from __future__ import annotations

import math

from . import expr as ir
from .model import ModelIR, Summand

INTERNAL = "\u03a3"  # marks an index summed inside a let


def layer_of(model: ModelIR, name: str) -> str:
    """The sampled layer behind a reference (a pooling layer stands for its detector)."""
    layer = model.layer(name)
    return layer.pooled_from or layer.name


def layers_in(model: ModelIR, summand: Summand) -> set[str]:
    return {layer_of(model, name) for name, _ in _atoms(model, summand.expr, {}, {})}


def couples_units(model: ModelIR, summand: Summand, layer: str) -> bool:
    if _degree(model, summand.expr, layer, {}) < 2:
        return False
    keys = {key for name, key in _atoms(model, summand.expr, {}, {}) if layer_of(model, name) == layer}
    return len(keys) > 1 or any(INTERNAL in part for key in keys for part in key)


def _atoms(model: ModelIR, node: ir.Expr, renames: dict[str, str], memo: dict) -> set[tuple[str, tuple[str, ...]]]:
    """(layer, index key) for every layer reference, looking through lets.

    `memo` holds each (let, index key) already expanded: a let used twice at
    every level of a chain of lets would otherwise cost exponential time.
    """
    if isinstance(node, ir.Ref):
        keys = tuple(_rename(str(a), a, renames) for a in node.indices)
        if node.kind == "layer":
            return {(node.name, keys)}
        if node.kind == "let":
            if (node.name, keys) not in memo:
                let = model.let(node.name)
                found = set()
                for summand in let.summands:
                    inner = dict(zip(let.indices, keys))
                    inner.update({s: f"{INTERNAL}{let.name}.{s}" for s in summand.summed})
                    found |= _atoms(model, summand.expr, inner, memo)
                memo[(node.name, keys)] = found
            return memo[(node.name, keys)]
        return set()
    found = set()
    for child in ir.children(node):
        found |= _atoms(model, child, renames, memo)
    return found


def _rename(text: str, affine: ir.Affine, renames: dict[str, str]) -> str:
    if not renames:
        return text
    if affine.plain is not None:
        return renames.get(affine.plain, affine.plain)
    parts = [f"{c}*{renames.get(n, n)}" for n, c in affine.terms]
    return "+".join(parts + [str(affine.offset)])


def _degree(model: ModelIR, node: ir.Expr, layer: str, memo: dict[str, float]) -> float:
    """The polynomial degree of `node` in `layer`'s units (inf if not a polynomial); `memo` caches lets."""
    if isinstance(node, ir.Const):
        return 0
    if isinstance(node, ir.Ref):
        if node.kind == "layer":
            return 1 if layer_of(model, node.name) == layer else 0
        if node.kind == "let":
            if node.name not in memo:
                summands = model.let(node.name).summands
                memo[node.name] = max((_degree(model, s.expr, layer, memo) for s in summands), default=0)
            return memo[node.name]
        return 0
    if isinstance(node, ir.Add):
        return max(_degree(model, t, layer, memo) for t in node.terms)
    if isinstance(node, ir.Mul):
        return sum(_degree(model, f, layer, memo) for f in node.factors)
    if isinstance(node, ir.Neg):
        return _degree(model, node.operand, layer, memo)
    if isinstance(node, ir.Div):
        below = _degree(model, node.denominator, layer, memo)
        return _degree(model, node.numerator, layer, memo) if below == 0 else math.inf
    if isinstance(node, ir.Pow):
        base = _degree(model, node.base, layer, memo)
        if base == 0:
            return 0
        exponent = node.exponent
        return exponent * base if float(exponent).is_integer() and exponent >= 0 else math.inf
    return 0 if _degree(model, node.arg, layer, memo) == 0 else math.inf
