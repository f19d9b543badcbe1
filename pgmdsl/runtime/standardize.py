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

A sequence model's input layer holds past frames (runtime.sequences), so it
takes its frame layer's transform, fitted on the frames and repeated for
each past frame: every frame, wherever it sits in a window, meets the same
map. Its log-Jacobian is left out of `log_jacobian`: log p(frame | past) is
a density of the frame only (the input layers are `conditioned`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import units
from ..errors import DSLError
from .sequences import sequence_structure

OBSERVED = ("visible", "input")


def standardizable(unit_name: str | None) -> bool:
    """Whether data of this unit type may be standardised: a quadratic energy and the whole real line as support."""
    unit = units.get(unit_name) if unit_name is not None else None
    return unit is not None and unit.quadratic and unit.bounds is None


def real_valued_layers(compiled) -> list[str]:
    """The observed layers of a compiled model whose data `fit` standardises (a sequence model's past included)."""
    return list(standardized_shapes(compiled))


def standardized_shapes(model) -> dict[str, tuple[int, ...]]:
    """{layer: the shape of one row} for every layer a standardisation of `model` (a Model or Compiled) may hold.

    The observed layers whose units are standardizable, and a sequence
    model's input layer when its frame layer is one of them (it holds frames).
    """
    table = _layer_table(model)
    shapes = {name: info["shape"] for name, info in table.items()
              if info["role"] in OBSERVED and standardizable(info["unit"])}
    structure = sequence_structure(model)
    if structure is not None:
        past, frame = structure
        shapes.pop(past, None)
        if frame in shapes:
            shapes[past] = table[past]["shape"]
    return shapes


def _layer_table(model) -> dict:
    """{layer: {"role", "unit", "shape"}} of a Compiled (its module's LAYERS) or a Model (its IR layers)."""
    if hasattr(model, "module"):
        return {name: {**info, "shape": tuple(info["shape"])} for name, info in model.layers.items()}
    return {layer.name: {"role": layer.role, "unit": layer.unit, "shape": tuple(layer.shape)} for layer in model.layers}


def conditioned_layers(model, layers) -> tuple[str, ...]:
    """Those of `layers` that `model` conditions on (its input layers): their log-Jacobian is not the data's."""
    table = _layer_table(model)
    return tuple(name for name in layers if table[name]["role"] == "input")


def frames_mismatch(standardization, model) -> str | None:
    """Why a sequence model's standardisation does not give its past the frame layer's transform, or None.

    The input layer of a sequence model holds frames: its mean and scale must
    be the frame layer's, repeated for each past frame, or the two would be
    standardised differently (and generation, which feeds frames back, would
    mix units). Also None for any other model.
    """
    structure = sequence_structure(model)
    if structure is None or standardization is None:
        return None
    past, frame = structure
    if (past in standardization.mean) != (frame in standardization.mean):
        given, missing = (past, frame) if past in standardization.mean else (frame, past)
        return (f"it standardises layer '{given}' but not '{missing}': a sequence model's past frames and frame "
                "take one transform")
    if past not in standardization.mean:
        return None
    for part in ("mean", "scale"):
        values = getattr(standardization, part)
        if not np.array_equal(values[past], np.broadcast_to(values[frame], values[past].shape)):
            return f"its {part} of layer '{past}' is not the {part} of frame layer '{frame}' for each past frame"
    return None


@dataclass(frozen=True)
class Standardization:
    """Per-unit affine maps of some layers, x -> (x - mean[layer]) / scale[layer]; other layers pass unchanged.

    mean and scale: {layer: float64 array shaped as one row of the layer}; every scale is positive.
    conditioned: the layers among them that the model conditions on (input layers), left out of `log_jacobian`.
    """

    mean: dict
    scale: dict
    conditioned: tuple = ()

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
        """sum(log scale) over every standardised unit the model has a density for (not `conditioned`):
        log p(row) = log p(standardised row) - this, and likewise for log p(frame | past)."""
        return float(sum(np.sum(np.log(scale)) for name, scale in self.scale.items() if name not in self.conditioned))


def fit(compiled, data: dict) -> Standardization | None:
    """The standardisation of `data` (a dict of training rows per observed layer, as train.as_data gives).

    Each unit of a real-valued observed layer gets its rows' mean and
    standard deviation; a unit whose rows are all equal keeps scale 1 (its
    values become 0). A sequence model's input layer is not fitted: it takes
    the frame layer's transform for each past frame (`data` need not hold
    it). None when no layer is real-valued.
    """
    shapes = standardized_shapes(compiled)
    structure = sequence_structure(compiled)
    past = structure[0] if structure is not None and structure[0] in shapes else None
    mean, scale = {}, {}
    for name in shapes:
        if name == past:
            continue
        if name not in data:
            raise DSLError(f"standardize: the data lacks layer '{name}'")
        rows = np.asarray(data[name], dtype=np.float64)
        if len(rows) == 0:
            raise DSLError(f"standardize: layer '{name}' has no rows")
        deviation = rows.std(axis=0)
        constant = (np.ptp(rows, axis=0) == 0) | ~(deviation > 0)  # rounding can leave a constant column a tiny std
        mean[name] = rows.mean(axis=0)
        scale[name] = np.where(constant, 1.0, deviation)
    if past is not None:
        frame = structure[1]
        mean[past] = np.broadcast_to(mean[frame], shapes[past]).copy()
        scale[past] = np.broadcast_to(scale[frame], shapes[past]).copy()
    return Standardization(mean, scale, conditioned_layers(compiled, mean)) if mean else None


def fit_frames(compiled, sequences) -> Standardization | None:
    """The standardisation of a sequence model from its training sequences, before any window is cut.

    sequences: (S, T, ...frame) or a list of (T, ...frame) arrays. Every
    frame counts once (a window would count a frame order + 1 times, the
    first frames of a sequence fewer); the past takes the frames' transform.
    """
    structure = sequence_structure(compiled)
    if structure is None:
        raise DSLError(f"standardize: model {compiled.model.name} is not a sequence model")
    frame = structure[1]
    shape = tuple(compiled.layers[frame]["shape"])
    frames = np.concatenate([np.asarray(s, dtype=np.float64).reshape((-1,) + shape) for s in sequences])
    return fit(compiled, {frame: frames})
