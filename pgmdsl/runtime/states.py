"""Every configuration of some discrete layers, in chunks, by mixed-radix counting.

A unit of finitely many values is one digit (radix 2 for binary or spin), a
one-hot group one digit of radix K (UnitType.digits), a pooling block one
digit of radix (units in the block + 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import log2, prod

import numpy as np

from .. import units
from ..errors import DSLError
from ..units import UnitType


@dataclass(frozen=True)
class Digits:
    """How one layer's configurations are counted."""

    layer: str
    unit: UnitType
    shape: tuple[int, ...]
    radices: tuple[int, ...]
    pool: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        return prod(self.radices)


def digits(compiled, layer: str) -> Digits:
    info = compiled.layers[layer]
    shape, unit = tuple(info["shape"]), units.get(info["unit"])
    if unit is None or not unit.enumerable:
        raise DSLError(f"layer '{layer}' is {info['unit'] or 'real'}-valued: its states cannot be enumerated")
    if info["update"] == "pooled":
        pool = compiled.model.layer(layer).pooling.block
        blocks = prod(shape) // prod(pool)
        return Digits(layer, unit, shape, (prod(pool) + 1,) * blocks, pool)
    return Digits(layer, unit, shape, unit.digits(shape))


def log2_count(layers: list[Digits]) -> float:
    return float(sum(log2(radix) for d in layers for radix in d.radices))


def chunks(layers: list[Digits], size: int = 1 << 16, span: range | None = None):
    """Yield dicts of layer -> array of states, `size` configurations at a time: those numbered in `span`
    (default all of them; a range of them is one task's share of a distributed enumeration)."""
    span = range(prod(d.count for d in layers)) if span is None else span
    for start in range(span.start, span.stop, size):
        index = np.arange(start, min(start + size, span.stop), dtype=np.int64)
        state = {}
        for d in layers:
            index, own = np.divmod(index, d.count)
            state[d.layer] = decode(d, own)
        yield state


def decode(d: Digits, number: np.ndarray) -> np.ndarray:
    """The configurations numbered `number` (0 <= number < d.count) of one layer."""
    rows = len(number)
    values = np.empty((rows, len(d.radices)), dtype=np.int64)
    for position, radix in enumerate(d.radices):
        number, values[:, position] = np.divmod(number, radix)
    if d.pool:
        return _pooled(values, d)
    return d.unit.from_digits(values, d.shape)


def _pooled(values: np.ndarray, d: Digits) -> np.ndarray:
    """Digit 0: the block is off; digit k: its (k-1)-th unit is on."""
    rows = len(values)
    if len(d.pool) == 1:
        (p,) = d.pool
        blocks = np.zeros((rows, len(d.radices), p + 1))
        np.put_along_axis(blocks, values[..., None], 1.0, axis=-1)
        return blocks[..., 1:].reshape((rows,) + d.shape)
    *lead, height, width = d.shape
    ph, pw = d.pool
    grid = (prod(lead), height // ph, width // pw)
    blocks = np.zeros((rows,) + grid + (ph * pw + 1,))
    chosen = values.reshape((rows,) + grid)
    np.put_along_axis(blocks, chosen[..., None], 1.0, axis=-1)
    units = blocks[..., 1:].reshape((rows,) + grid + (ph, pw))
    units = units.transpose(0, 1, 2, 4, 3, 5).reshape((rows, prod(lead), height, width))
    return units.reshape((rows,) + d.shape)
