"""Standardising real-valued observed layers: each unit's data to mean 0 and standard deviation 1.

Why: a Gaussian-Bernoulli RBM starts with every variance 1 and trains all its
parameters at one learning rate; data on other scales (pixels in [0, 1],
features in the thousands) make any one rate too large for some units and
too small for others, and training diverges or crawls. Rows go through
x -> (x - mean) / scale with the mean and standard deviation of the
training rows; the model then lives in those units, so the same transform
must meet every later row (held-out data) and be undone for samples. It is
kept with the model (`compiled.standardization`, saved in the checkpoint).

Log-densities change by the log-Jacobian of the map: for a row x and its
standardised z, log p(x) = log p(z) - sum(log scale) (`log_jacobian`).
Only layers whose units take any real value and have a quadratic energy are
standardised (`standardizable`): an affine map keeps such data in the
support, while units bounded below (rectified) or discrete would leave it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import units
from ..errors import DSLError

OBSERVED = ("visible", "input")


def standardizable(unit_name: str | None) -> bool:
    """Whether data of this unit type may be standardised: a quadratic energy and the whole real line as support."""
    unit = units.get(unit_name) if unit_name is not None else None
    return unit is not None and unit.quadratic and unit.bounds is None


def real_valued_layers(compiled) -> list[str]:
    """The observed layers of a compiled model whose data `fit` standardises."""
    return [name for name, info in compiled.layers.items() if info["role"] in OBSERVED and standardizable(info["unit"])]


@dataclass(frozen=True)
class Standardization:
    """Per-unit affine maps of some layers, x -> (x - mean[layer]) / scale[layer]; other layers pass unchanged.

    mean and scale: {layer: float64 array shaped as one row of the layer}; every scale is positive.
    """

    mean: dict
    scale: dict

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.mean)

    def apply(self, data: dict) -> dict:
        """Rows in the model's units: each standardised layer shifted and scaled, the others as given."""
        return {name: (np.asarray(values) - self.mean[name]) / self.scale[name] if name in self.mean else values
                for name, values in data.items()}

    def undo(self, layer: str, values) -> np.ndarray:
        """Rows (or conditional means) of `layer` back in the data's units; a layer not standardised is unchanged."""
        if layer not in self.mean:
            return np.asarray(values)
        return np.asarray(values) * self.scale[layer] + self.mean[layer]

    @property
    def log_jacobian(self) -> float:
        """sum(log scale) over every standardised unit: log p(row) = log p(standardised row) - this."""
        return float(sum(np.sum(np.log(scale)) for scale in self.scale.values()))


def fit(compiled, data: dict) -> Standardization | None:
    """The standardisation of `data` (a dict of training rows per observed layer, as train.as_data gives).

    Each unit of a real-valued observed layer gets its rows' mean and
    standard deviation; a unit whose rows are all equal keeps scale 1 (its
    values become 0). None when no layer is real-valued.
    """
    mean, scale = {}, {}
    for name in real_valued_layers(compiled):
        if name not in data:
            raise DSLError(f"standardize: the data lacks layer '{name}'")
        rows = np.asarray(data[name], dtype=np.float64)
        if len(rows) == 0:
            raise DSLError(f"standardize: layer '{name}' has no rows")
        deviation = rows.std(axis=0)
        constant = (np.ptp(rows, axis=0) == 0) | ~(deviation > 0)  # rounding can leave a constant column a tiny std
        mean[name] = rows.mean(axis=0)
        scale[name] = np.where(constant, 1.0, deviation)
    return Standardization(mean, scale) if mean else None
