"""The registry of unit types: what values a layer's units take.

A unit type is one registered object. The IR needs its name and whether its
units are discrete; the symbolic stage and the runtime add their conditional
distribution, log-partition function, mean and sampler to the same object.
A new type (rectified, binomial) is a plug-in that calls `register`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DataError


@dataclass(frozen=True)
class UnitType:
    name: str
    discrete: bool
    values: tuple[int, ...] | None  # the values of one unit, when it takes finitely many
    description: str
    bounds: tuple[float, float] | None = None  # the hull of the support: data (or probabilities) must lie in it
    normalised: bool = False  # each row along the last axis sums to 1 (one-hot states and probabilities)
    remedy: str = ""  # how to bring data into the support, for the error message

    def check_data(self, values, layer: str) -> None:
        """Refuse data outside the support, naming the layer, the first offending value and where it is.

        values: the layer's rows, the batch axis first. NaN and infinities are
        refused for every type; the bounds are inclusive, so probabilities pass
        (a binary layer's data may be the means of its units).
        """
        values = np.asarray(values)
        bad = ~np.isfinite(values)
        if self.bounds is not None:
            bad |= (values < self.bounds[0]) | (values > self.bounds[1])
        support = f"layer '{layer}' has {self.name} units"
        if self.bounds is not None:
            low, high = self.bounds
            support += f", which take values in [{low:g}, {high:g}]"
        advice = f": {self.remedy}" if self.remedy else ""
        if bad.any():
            where = np.unravel_index(int(np.argmax(bad)), values.shape)
            raise DataError(f"{support}; the data has {values[where]:g} at {_position(where)}{advice}")
        if self.normalised and values.size:
            sums = values.sum(axis=-1)
            off = np.abs(sums - 1) > 1e-4
            if off.any():
                where = np.unravel_index(int(np.argmax(off)), sums.shape)
                raise DataError(f"a row of layer '{layer}' is not one of its states: its {self.name} units take rows "
                                f"summing to 1 along the last axis (a state, or probabilities of states), and the "
                                f"one at {_position(where)} sums to {sums[where]:g}{advice}")


def _position(index: tuple) -> str:
    """'row 3, unit 5' (or 'unit (1, 2)' for layers of several axes)."""
    row, unit = int(index[0]), tuple(int(i) for i in index[1:])
    if not unit:
        return f"row {row}"
    return f"row {row}, unit {unit[0] if len(unit) == 1 else unit}"


_REGISTRY: dict[str, UnitType] = {}


def register(unit: UnitType) -> UnitType:
    """Add a unit type so .dgm files can name it; returns it for chaining."""
    _REGISTRY[unit.name] = unit
    return unit


def get(name: str) -> UnitType | None:
    return _REGISTRY.get(name)


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


register(UnitType("binary", True, (0, 1), "{0,1}: conditional is sigmoid(field)", bounds=(0.0, 1.0),
                  remedy="scale the rows into [0, 1] (divide by the largest value) or binarise them "
                         "(--data digits-binary is scikit-learn's digits binarised)"))
register(UnitType("spin", True, (-1, 1), "{-1,+1}: conditional mean is tanh(field)", bounds=(-1.0, 1.0),
                  remedy="map the rows into [-1, 1] (2x - 1 for values in [0, 1])"))
register(UnitType("gaussian", False, None, "real: needs a positive quadratic term"))
register(UnitType("onehot", True, None, "categorical over the last axis: softmax", bounds=(0.0, 1.0),
                  normalised=True, remedy="give each row one 1 (or probabilities summing to 1) along the last axis"))
