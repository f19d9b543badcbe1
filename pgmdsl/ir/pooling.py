"""Pooling layers written out as the blocks they pool.

A pooling unit p[k, i, j] is on exactly when one unit of its block of the
detector layer h is (probabilistic max pooling allows at most one), so
p[k, i, j] = sum over a < P, b < Q of h[k, P*i + a, Q*j + b], exactly, on
every state the sampler can reach. Replacing each reference to p by that sum
turns an energy term on p (a pooling bias, a coupling to a layer above) into
terms on h: the field of h then gets the pooling layer's field added to every
"on" state of the block, the free energy sums it out with h, and the
statistics take E[p] as the sum of the block's means. Nothing downstream
needs to know about p; the derivation runs on the expanded model, the graph
(interactions.layer_of) already reads p as h.

A reference to p must be a factor of its summand's product (a pooling unit in
a sum, exp(...) or a power would need the block's sum inside it, which no
summand can hold); two pooling units in one product (p W p) are two sums.
"""

from __future__ import annotations

import dataclasses

from ..errors import DSLUnsupportedError
from . import expr as ir
from .model import ModelIR, Summand


def expand(model: ModelIR) -> ModelIR:
    """The model with every pooling unit in its energy and lets replaced by the sum of its block."""
    pools = {layer.name: layer for layer in model.layers if layer.role == "pooled"}
    if not pools:
        return model
    terms = tuple(
        dataclasses.replace(term, summands=tuple(_expand(model, s, pools, term.name) for s in term.summands))
        for term in model.terms
    )
    lets = tuple(
        dataclasses.replace(let, summands=tuple(_expand(model, s, pools, f"let {let.name}") for s in let.summands))
        for let in model.lets
    )
    return dataclasses.replace(model, terms=terms, lets=lets)


def _expand(model: ModelIR, summand: Summand, pools: dict, where: str) -> Summand:
    if not any(ref.name in pools for ref in summand.refs()):
        return summand
    taken = {name for name, _ in summand.extents}
    added: list[tuple[str, int]] = []

    def rewrite(node: ir.Expr, factor: bool) -> ir.Expr:
        if isinstance(node, ir.Ref) and node.name in pools:
            if not factor:
                raise DSLUnsupportedError(
                    f"pooling layer {node.name} must enter its summand as a factor of the product ({where}: "
                    f"{summand}): a pooling unit is the sum of its block, which cannot go inside a sum, a function, "
                    f"a power or a denominator", node.span)
            return _block_sum(model, pools[node.name], node, taken, added)
        if isinstance(node, ir.Mul):
            return ir.Mul(tuple(rewrite(f, factor) for f in node.factors))
        if isinstance(node, ir.Neg):
            return ir.Neg(rewrite(node.operand, factor))
        if isinstance(node, ir.Div):
            return ir.Div(rewrite(node.numerator, factor), rewrite(node.denominator, False))
        if isinstance(node, ir.Add):
            return ir.Add(tuple(rewrite(t, False) for t in node.terms))
        if isinstance(node, ir.Pow):
            return ir.Pow(rewrite(node.base, False), node.exponent)
        if isinstance(node, ir.Func):
            return ir.Func(node.name, rewrite(node.arg, False))
        return node

    expr = rewrite(summand.expr, True)
    return Summand(expr, summand.extents + tuple(added), summand.summed + tuple(n for n, _ in added), summand.span)


def _block_sum(model: ModelIR, pool, ref: ir.Ref, taken: set[str], added: list) -> ir.Ref:
    """p[k, i, j] as h[k, P*i + a, Q*j + b], with a and b new indices summed over the block."""
    detector = model.layer(pool.pooled_from)
    block = detector.pooling.block
    first = len(detector.shape) - len(block)
    indices = list(ref.indices[:first])
    for axis, (affine, size) in enumerate(zip(ref.indices[first:], block)):
        inner = _fresh(f"{ref.name}_{axis}", taken)
        added.append((inner, size))
        scaled = tuple((name, coef * size) for name, coef in affine.terms)
        indices.append(ir.Affine(scaled + ((inner, 1),), affine.offset * size))
    return ir.Ref(detector.name, "layer", tuple(indices), ref.span)


def _fresh(stem: str, taken: set[str]) -> str:
    """An index name no other index of the summand has."""
    name, number = stem, 0
    while name in taken:
        number += 1
        name = f"{stem}_{number}"
    taken.add(name)
    return name
