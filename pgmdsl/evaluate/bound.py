"""The mean-field lower bound on log p(v) (Salakhutdinov and Hinton 2009).

log p(v) >= -E(v, mu) + H(q) + E_q[log measure] - log Z, with q the factorised
mean-field posterior over the latent layers (means mu). E is multilinear in the
layers of a DBM, so E_q[E] = E(v, mu). The base measure (binomial's C(n, x))
counts for the observed values and, in expectation, the latent ones; 0 for
types without one. log Z comes from exact_log_z or ais.
"""

from __future__ import annotations

import numpy as np

from .. import units
from ..errors import DSLError
from ..runtime.recipes.dbm import start_means
from ..runtime.stack import CompiledStack
from .stack import stack_lower_bound


def mean_field(compiled, data: dict, steps: int = 30) -> dict:
    """Fixed point of the mean-field equations for every latent layer, observed layers clamped."""
    xp = compiled.xp
    state = {k: xp.asarray(v, dtype=compiled.dtype) for k, v in data.items()}
    latent = [n for n, info in compiled.layers.items() if info["role"] == "hidden" and n not in state]
    rows = len(next(iter(state.values())))
    started = start_means(compiled, state)  # a DBM chain's doubled bottom-up pass; else 0.5 each
    for name in latent:
        if compiled.layers[name]["update"] == "unitwise":
            raise DSLError(f"mean-field needs conditionally independent units; layer '{name}' couples its own")
        state[name] = started[name] if name in started else \
            xp.full((rows,) + tuple(compiled.layers[name]["shape"]), 0.5, dtype=compiled.dtype)
    for _ in range(steps):
        for name in latent:
            state[name] = compiled.module_mean(name, state)
    return {n: state[n] for n in latent}


def entropy(compiled, name: str, mean) -> np.ndarray:
    """Entropy of a factorised layer with the given means, one value per row."""
    info = compiled.layers[name]
    mean = np.asarray(mean.get() if hasattr(mean, "get") else mean, dtype=np.float64)
    if info["update"] != "pooled":
        return units.get(info["unit"]).entropy(mean)
    # a pooling block is one categorical over its units and "all off"
    mu, rows = np.clip(mean, 1e-12, 1 - 1e-12), len(mean)
    blocks = compiled.module._blocks(compiled.xp.asarray(mu), compiled.model.layer(name).pooling.block)
    blocks = np.clip(np.asarray(blocks.get() if hasattr(blocks, "get") else blocks), 1e-12, 1)
    off = np.clip(1 - blocks.sum(-1), 1e-12, 1)
    return -(np.sum(blocks * np.log(blocks), axis=(-1,)) + off * np.log(off)).reshape(rows, -1).sum(1)


def lower_bound(compiled, data, log_z: float, steps: int = 30) -> np.ndarray:
    """The variational lower bound on log p(observed) for each row.

    A deep belief network (a stack) has its own bound, q its up pass rather than mean-field:
    stack_lower_bound with its default samples, log_z its top level's log Z (steps does not apply).
    """
    if isinstance(compiled, CompiledStack):
        return stack_lower_bound(compiled, data, log_z)
    from ..runtime.train import as_data

    data = as_data(compiled, data)
    means = mean_field(compiled, data, steps)
    energy = compiled.energy({**data, **means})
    energy = np.asarray(energy.get() if hasattr(energy, "get") else energy, dtype=np.float64)
    return -energy + sum(entropy(compiled, n, m) for n, m in means.items()) + log_measure(compiled, data, means) - log_z


def log_measure(compiled, data: dict, means: dict) -> np.ndarray | float:
    """E_q[log measure] per row (binomial's C(n, x); 0 for types without one): of the observed rows' values,
    and its mean under q for the latent layers, so the bound scores p(x) ∝ measure(x) exp(-E)."""
    def host(value):
        return np.asarray(value.get() if hasattr(value, "get") else value, dtype=np.float64)

    total = 0.0
    for name, values in data.items():
        unit = units.get(compiled.layers[name]["unit"]) if compiled.layers[name]["role"] != "input" else None
        if unit is not None:
            total = total + unit.log_measure_of(host(values))
    for name, mean in means.items():
        if compiled.layers[name]["update"] != "pooled":
            total = total + units.get(compiled.layers[name]["unit"]).expected_log_measure(host(mean))
    return total
