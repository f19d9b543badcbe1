"""Initial parameter values from the declared initialisers and constraints."""

from __future__ import annotations

import numpy as np


def initial_value(param, rng: np.random.Generator, dtype, data: dict | None = None) -> np.ndarray:
    init = param.init
    if init.kind == "normal":
        value = rng.normal(init.args[0], init.args[1], param.shape)
    elif init.kind == "uniform":
        value = rng.uniform(init.args[0], init.args[1], param.shape)
    elif init.kind == "identity":
        value = np.eye(param.shape[0])
    elif init.kind == "logit_mean" and data is not None and init.args[0] in data:
        value = logit_mean(np.asarray(data[init.args[0]], dtype=np.float64))
    else:
        value = np.full(param.shape, init.args[0] if init.kind == "constant" else 0.0)
    return constrain(param, np.asarray(value, dtype=np.float64)).astype(dtype)


def logit_mean(data: np.ndarray, smoothing: float = 0.01) -> np.ndarray:
    """log(p / (1 - p)) of each unit's mean over the data, p kept inside [s, 1 - s]."""
    p = np.clip(data.mean(axis=0), smoothing, 1 - smoothing)
    return np.log(p / (1 - p))


def constrain(param, value, xp=np):
    """Project onto the declared constraints: symmetric, zero_diagonal (last two axes)."""
    if "symmetric" in param.constraints:
        value = (value + xp.swapaxes(value, -1, -2)) / 2
    if "zero_diagonal" in param.constraints:
        value = value * (1 - xp.eye(value.shape[-1], dtype=value.dtype))
    return value
