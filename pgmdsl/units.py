"""The registry of unit types: what values a layer's units take.

A unit type is one registered object. The IR needs its name and whether its
units are discrete; the symbolic stage and the runtime add their conditional
distribution, log-partition function, mean and sampler to the same object.
A new type (rectified, binomial) is a plug-in that calls `register`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitType:
    name: str
    discrete: bool
    values: tuple[int, ...] | None  # the values of one unit, when it takes finitely many
    description: str


_REGISTRY: dict[str, UnitType] = {}


def register(unit: UnitType) -> UnitType:
    """Add a unit type so .dgm files can name it; returns it for chaining."""
    _REGISTRY[unit.name] = unit
    return unit


def get(name: str) -> UnitType | None:
    return _REGISTRY.get(name)


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


register(UnitType("binary", True, (0, 1), "{0,1}: conditional is sigmoid(field)"))
register(UnitType("spin", True, (-1, 1), "{-1,+1}: conditional mean is tanh(field)"))
register(UnitType("gaussian", False, None, "real: needs a positive quadratic term"))
register(UnitType("onehot", True, None, "categorical over the last axis: softmax"))
