"""Recognise a bipartite model whose conditionals are affine in one matrix, and pack its parameters.

When every summand of the energy is a unit bias (-b[j]*h[j]) or a bilinear
coupling (-v[i]*W[i,j]*h[j]) between the observed class and the hidden class
of a two-class Gibbs schedule, each layer's field is one row of a single
matrix product: with the observed units and a constant 1 in one row vector
x, and P = [[couplings, observed biases], [hidden biases, 0]], the hidden
fields are x @ P (and the observed fields [h, 1] @ P.T). Both phases'
statistics are then one product too. `FusedStep` (runtime.fused) trains such
models in a handful of array calls per update, which is what decides speed
at small minibatches, where every call costs more than its arithmetic.

The layout is read off the model IR, never assumed: any other summand, a
parameter used twice, a constraint or a Gaussian or pooled unit means the generic
trainer runs instead, and `why_not_packed` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from .. import units
from ..ir import expr as ir


@dataclass(frozen=True)
class Segment:
    """A layer's units as the columns start:stop of its side of the packed matrix."""

    layer: str
    start: int
    stop: int
    shape: tuple[int, ...]
    kind: str  # the fused kernel family that draws it (UnitType.packed): bernoulli | sign | categorical


@dataclass(frozen=True)
class Block:
    """Where one parameter lives in the packed matrix P: rows, columns, and whether it is stored transposed."""

    param: str
    rows: slice
    cols: slice
    transposed: bool  # the parameter indexes the hidden layer first
    sign: int  # the summand's sign: -1 for -p*x*y, whose packed entries are p itself; +1 stores -p


@dataclass(frozen=True)
class PackedLayout:
    """Which columns of the packed matrix each layer's units take, and where each parameter is stored."""

    observed: tuple[Segment, ...]
    hidden: tuple[Segment, ...]
    blocks: tuple[Block, ...]

    @property
    def n_observed(self) -> int:
        return self.observed[-1].stop

    @property
    def n_hidden(self) -> int:
        return self.hidden[-1].stop

    @property
    def shape(self) -> tuple[int, int]:
        """(observed units + 1, hidden units + 1): the last row holds hidden biases, the last column observed ones."""
        return (self.n_observed + 1, self.n_hidden + 1)


class NotPacked(Exception):
    """The model is not a bipartite model with affine conditionals (the message says which part)."""


def packed_layout(compiled) -> PackedLayout:
    """The packed layout of a compiled model, or NotPacked with the reason."""
    layers = compiled.layers
    schedule = compiled.schedule
    if len(schedule) != 2:
        raise NotPacked(f"the Gibbs schedule has {len(schedule)} colour classes, not 2")
    observed = [n for n, info in layers.items() if info["role"] == "visible"]
    if not observed:
        raise NotPacked("the model has no visible layer")
    others = [n for n, info in layers.items() if info["role"] not in ("visible", "hidden")]
    if others:
        raise NotPacked(f"layer '{others[0]}' is {layers[others[0]]['role']}, not visible or hidden")
    if set(schedule[0]) != set(observed) and set(schedule[1]) != set(observed):
        raise NotPacked("the observed layers are not one colour class of the Gibbs schedule")
    hidden = [n for step in schedule for n in step if n not in observed]
    if not hidden or not set(hidden) <= set(compiled.marginalised):
        raise NotPacked("the hidden class is not summed out analytically")
    for name, info in layers.items():
        if info["update"] != "block" or not units.get(info["unit"]).packed:
            packed = ", ".join(n for n in units.names() if units.get(n).packed)
            raise NotPacked(f"layer '{name}' has {info['unit']} units updated {info['update']}-wise, not "
                            f"{packed} units updated block-wise")
    segments = {"observed": _segments(observed, layers), "hidden": _segments(hidden, layers)}
    where = {s.layer: (side, s) for side, segs in segments.items() for s in segs}
    rows = segments["observed"][-1].stop
    cols = segments["hidden"][-1].stop
    blocks = []
    for term in compiled.model.terms:
        for summand in term.summands:
            blocks.append(_block(summand.expr, where, rows, cols, term.name))
    _check_parameters(compiled, blocks)
    return PackedLayout(tuple(segments["observed"]), tuple(segments["hidden"]), tuple(blocks))


def why_not_packed(compiled) -> str | None:
    """None when the model packs; otherwise the reason, in words."""
    try:
        packed_layout(compiled)
    except NotPacked as reason:
        return str(reason)
    return None


def _segments(names, layers) -> list[Segment]:
    segments, start = [], 0
    for name in names:
        shape = tuple(layers[name]["shape"])
        segments.append(Segment(name, start, start + prod(shape), shape, units.get(layers[name]["unit"]).packed))
        start += prod(shape)
    return segments


def _block(expr, where, rows: int, cols: int, term: str) -> Block:
    """The packed place of one summand: -p[I]*x[I] (a bias) or -x[I]*p[I,J]*y[J] (a coupling)."""
    sign, factors = _product(expr, term)
    params = [f for f in factors if f.kind == "param"]
    layer_refs = [f for f in factors if f.kind == "layer"]
    if len(params) != 1 or len(layer_refs) not in (1, 2) or len(factors) != len(layer_refs) + 1:
        raise NotPacked(f"term '{term}' is not a bias or a coupling of two layers through one parameter")
    param = params[0]
    names = [_plain(ref, term) for ref in layer_refs]
    sides = [where[ref.name][0] for ref in layer_refs]
    index = _plain(param, term)
    if len(layer_refs) == 1:
        segment = where[layer_refs[0].name][1]
        if index != names[0] or len(set(index)) != len(index):
            raise NotPacked(f"term '{term}': {param} is not one bias per unit of {layer_refs[0].name}")
        span = slice(segment.start, segment.stop)
        if sides[0] == "observed":
            return Block(param.name, span, slice(cols, cols + 1), False, sign)
        return Block(param.name, slice(rows, rows + 1), span, False, sign)
    if sides[0] == sides[1]:
        raise NotPacked(f"term '{term}' couples two layers of the same colour class")
    first, second = (0, 1) if sides[0] == "observed" else (1, 0)
    x, y = where[layer_refs[first].name][1], where[layer_refs[second].name][1]
    if len(set(names[0] + names[1])) != len(names[0]) + len(names[1]):
        raise NotPacked(f"term '{term}' shares an index between its two layers")
    if index == names[first] + names[second]:
        transposed = False
    elif index == names[second] + names[first]:
        transposed = True
    else:
        raise NotPacked(f"term '{term}': {param} is not indexed by the two layers' indices in order")
    return Block(param.name, slice(x.start, x.stop), slice(y.start, y.stop), transposed, sign)


def _product(expr, term: str) -> tuple[int, list]:
    """A summand as sign * (product of references); NotPacked for anything else (sums, functions, other constants)."""
    if isinstance(expr, ir.Ref):
        if expr.kind not in ("layer", "param"):
            raise NotPacked(f"term '{term}' uses '{expr.name}', a {expr.kind}")
        return 1, [expr]
    if isinstance(expr, ir.Neg):
        sign, factors = _product(expr.operand, term)
        return -sign, factors
    if isinstance(expr, ir.Const) and abs(expr.value) == 1:
        return (1 if expr.value > 0 else -1), []
    if isinstance(expr, ir.Mul):
        sign, factors = 1, []
        for factor in expr.factors:
            s, f = _product(factor, term)
            sign, factors = sign * s, factors + f
        return sign, factors
    raise NotPacked(f"term '{term}' is not a product of one parameter and layer units (with sign +1 or -1)")


def _plain(ref, term: str) -> tuple[str, ...]:
    names = tuple(a.plain for a in ref.indices)
    if None in names:
        raise NotPacked(f"term '{term}' has an index expression ({ref}), not plain indices")
    return names


def _check_parameters(compiled, blocks) -> None:
    """Each parameter fills exactly one block, with no constraint, and no two blocks overlap."""
    seen: dict[str, Block] = {}
    for block in blocks:
        if block.param in seen:
            raise NotPacked(f"parameter '{block.param}' appears in more than one summand")
        seen[block.param] = block
    for param in compiled.model.params:
        if param.name not in seen:
            raise NotPacked(f"parameter '{param.name}' is not a bias or coupling of the energy")
        if param.constraints:
            raise NotPacked(f"parameter '{param.name}' is constrained ({', '.join(param.constraints)})")
    for i, block in enumerate(blocks):
        for other in blocks[:i]:
            if _meets(block.rows, other.rows) and _meets(block.cols, other.cols):
                raise NotPacked(f"parameters '{other.param}' and '{block.param}' act on the same units "
                                f"(two biases of one layer, or two couplings of one pair)")


def _meets(a: slice, b: slice) -> bool:
    return a.start < b.stop and b.start < a.stop
