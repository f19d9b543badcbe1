"""The model IR: a checked, size-resolved description of one model.

Everything here is immutable and printable. Sizes are concrete integers, names
are resolved, every index has a known extent and every energy term is a sum
of summands, each summed over its own indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Iterator

from ..source import SourceSpan
from .expr import Expr, Ref, refs, to_text


@dataclass(frozen=True)
class Pooling:
    """Probabilistic max pooling: blocks of the trailing axes, at most one unit on."""

    block: tuple[int, ...]  # block size along each pooled (trailing) axis
    into: str  # the name of the pooling layer


@dataclass(frozen=True)
class Layer:
    name: str
    role: str  # visible | hidden | input | pooled
    unit: str | None  # unit type name; None for an input layer without one
    shape: tuple[int, ...]
    span: SourceSpan
    pooling: Pooling | None = None
    pooled_from: str | None = None  # for role "pooled": the detection layer

    @property
    def sampled(self) -> bool:
        """Whether Gibbs sampling draws this layer (inputs are observed, pools derived)."""
        return self.role in ("visible", "hidden")

    @property
    def size(self) -> int:
        return prod(self.shape)


@dataclass(frozen=True)
class Initializer:
    kind: str  # constant | normal | uniform | identity | logit_mean
    args: tuple[float | str, ...]

    def __str__(self) -> str:
        if self.kind == "constant":
            return f"= {self.args[0]:g}"
        if self.kind in ("identity",):
            return f"= {self.kind}"
        rendered = ", ".join(a if isinstance(a, str) else f"{a:g}" for a in self.args)
        sign = "=" if self.kind == "logit_mean" else "~"
        return f"{sign} {self.kind}({rendered})"


@dataclass(frozen=True)
class Param:
    name: str
    shape: tuple[int, ...]
    init: Initializer
    constraints: tuple[str, ...]
    span: SourceSpan

    @property
    def size(self) -> int:
        return prod(self.shape)


@dataclass(frozen=True)
class Summand:
    """One product-like piece of a sum, summed over `summed` (all its non-free indices)."""

    expr: Expr
    extents: tuple[tuple[str, int], ...]  # every index of the summand and its range
    summed: tuple[str, ...]
    span: SourceSpan

    def refs(self) -> Iterator[Ref]:
        return refs(self.expr)

    def __str__(self) -> str:
        return to_text(self.expr)


@dataclass(frozen=True)
class Let:
    """A named intermediate tensor; its free indices are those on its left."""

    name: str
    indices: tuple[str, ...]
    shape: tuple[int, ...]
    summands: tuple[Summand, ...]
    span: SourceSpan


@dataclass(frozen=True)
class EnergyTerm:
    name: str
    summands: tuple[Summand, ...]
    span: SourceSpan
    via: str | None = None  # the `term` definition it was expanded from

    def __str__(self) -> str:
        text = " + ".join(str(s) for s in self.summands)
        return text.replace("+ -", "- ")


@dataclass(frozen=True)
class StackEntry:
    """One model of a `stack`, with its sizes bound."""

    model: "ModelIR"
    span: SourceSpan


@dataclass(frozen=True)
class ModelIR:
    name: str
    filename: str
    source: str
    sizes: tuple[tuple[str, int], ...]  # header sizes then size lets, in order
    layers: tuple[Layer, ...]
    params: tuple[Param, ...]
    lets: tuple[Let, ...]
    terms: tuple[EnergyTerm, ...]
    stack: tuple[StackEntry, ...]
    span: SourceSpan
    arguments: tuple[str, ...] = ()  # the header's size parameters (the rest of `sizes` are lets)

    def layer(self, name: str) -> Layer:
        return _find(self.layers, name)

    def param(self, name: str) -> Param:
        return _find(self.params, name)

    def let(self, name: str) -> Let:
        return _find(self.lets, name)


def _find(items, name):
    for item in items:
        if item.name == name:
            return item
    raise KeyError(name)
