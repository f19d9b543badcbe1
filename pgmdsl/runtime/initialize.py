"""Initial parameter values from the declared initialisers and constraints, and the memory budget.

Every array whose size a user picks (a model's sizes, batch and sample
counts, a data file's declared shape) is checked against MEMORY_BUDGET
before it is allocated, so an absurd size is a one-line DSLError saying how
much would fit rather than a MemoryError or a machine brought to a crawl.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DSLError

MEMORY_BUDGET = 2 << 30  # bytes one user-sized array (or set of arrays) may take; raise it here for bigger runs


def gigabytes(count: int) -> str:
    return f"{count / (1 << 30):.3g} GiB"


def check_budget(what: str, needed: int, advice: str, error=DSLError) -> None:
    """Refuse `needed` bytes above MEMORY_BUDGET: an `error` saying '{what} need N GiB, more than the budget; {advice}'."""
    if needed > MEMORY_BUDGET:
        raise error(f"{what} need {gigabytes(needed)}, more than the {gigabytes(MEMORY_BUDGET)} memory budget "
                       f"(pgmdsl.runtime.initialize.MEMORY_BUDGET); {advice}")


def state_bytes(layers: dict, dtype) -> int:
    """Bytes of one row of state: every layer's units (LAYERS of a generated module) in `dtype`."""
    return sum(math.prod(info["shape"]) for info in layers.values()) * np.dtype(dtype).itemsize


def check_rows(compiled, rows: int, what: str) -> None:
    """Refuse `rows` rows of the model's state above the budget, saying how many rows would fit.

    what: the rows as the user named them ("1000000000 samples of rbm"); the
    message completes it with the bytes needed and the largest count that fits.
    """
    row = max(state_bytes(compiled.layers, compiled.dtype), 1)
    check_budget(what, rows * row, f"at most {MEMORY_BUDGET // row} fit ({row} bytes each)")


def check_parameters(model, dtype) -> None:
    """Refuse a model whose parameters (and one row of its layers) exceed the budget, before any is drawn."""
    itemsize = np.dtype(dtype).itemsize
    sizes = {p.name: math.prod(p.shape) for p in model.params}
    needed = (sum(sizes.values()) + sum(layer.size for layer in model.layers)) * itemsize
    largest = max(sizes, key=sizes.get, default=None)
    shape = ", ".join(f"{k}={v}" for k, v in model.arguments.items())
    biggest = f" ({largest}: {sizes[largest]} values)" if largest else ""
    check_budget(f"model {model.name}({shape}): its parameters{biggest} in {np.dtype(dtype).name}", needed,
                 "choose smaller sizes with --set (or in load())")


def initial_value(param, rng: np.random.Generator, dtype, data: dict | None = None) -> np.ndarray:
    """The declared initial value, drawn directly in `dtype` (no float64 copy of a float32 matrix)."""
    init, dtype = param.init, np.dtype(dtype)
    if init.kind == "normal":
        value = rng.standard_normal(param.shape, dtype=dtype)
        value *= init.args[1]
        value += init.args[0]
    elif init.kind == "uniform":
        low, high = init.args[0], init.args[1]
        value = rng.random(param.shape, dtype=dtype)
        value *= high - low
        value += low
    elif init.kind == "identity":
        value = np.eye(param.shape[0], dtype=dtype)
    elif init.kind == "logit_mean" and data is not None and init.args[0] in data:
        value = logit_mean(np.asarray(data[init.args[0]], dtype=np.float64)).astype(dtype)
    else:
        value = np.full(param.shape, init.args[0] if init.kind == "constant" else 0.0, dtype=dtype)
    return constrain(param, value)


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
