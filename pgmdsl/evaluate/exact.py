"""Exact log partition functions and log-likelihoods by enumeration.

log Z = log of the sum over the kept layers of exp(-F), where F is a free
energy the compiler derived with one colour class summed out analytically.
Of the free energies available, the one leaving the fewest states to
enumerate is used (an RBM 784x20 enumerates its 2^20 hidden states, with
the visible layer summed out). Sums are chunked and numerically stable.
"""

from __future__ import annotations

import numpy as np
from ..runtime.numerics import logsumexp

from ..errors import DSLError
from ..runtime.states import chunks, digits, log2_count
from ..runtime.gpu import to_host as _host

MAX_STATES = 2**25


def _random_layers(compiled, kept) -> list[str]:
    return [n for n in kept if compiled.layers[n]["role"] != "input"]


def cheapest(compiled, exclude: tuple[str, ...] = ()) -> tuple[tuple[str, ...], list]:
    """The free energy (summed class) whose kept random layers have the fewest states."""
    best = None
    for summed, (kept, _) in compiled.free_energies.items():
        try:
            layers = [digits(compiled, n) for n in _random_layers(compiled, kept) if n not in exclude]
        except DSLError:
            continue  # a real-valued kept layer cannot be enumerated
        size = log2_count(layers)
        if best is None or size < best[0]:
            best = (size, summed, layers)
    if best is None:
        raise DSLError(
            f"model {compiled.model.name}: every way of summing out a class leaves a real-valued layer to "
            "enumerate; exact log Z is not available (use ais)"
        )
    return best[1], best[2]


def exact_log_z(compiled, inputs: dict | None = None, max_states: int = MAX_STATES, chunk: int = 1 << 16):
    """log Z, exactly. For a conditional model (input layers) give `inputs`: one log Z per row."""
    input_layers = [n for n, info in compiled.layers.items() if info["role"] == "input"]
    if input_layers and inputs is None:
        raise DSLError(f"model {compiled.model.name} is conditional on {', '.join(input_layers)}: give inputs=")
    summed, layers = cheapest(compiled)
    states = 2 ** log2_count(layers)
    if states > max_states:
        raise DSLError(
            f"exact log Z of {compiled.model.name} needs {states:.3g} states (2^{log2_count(layers):.1f}), more than "
            f"max_states={max_states:.3g}; use ais"
        )
    if not input_layers:
        return _log_sum(compiled, summed, layers, {}, chunk)
    rows = len(next(iter(inputs.values())))
    return np.array([
        _log_sum(compiled, summed, layers, {k: np.asarray(v)[r:r + 1] for k, v in inputs.items()}, chunk)
        for r in range(rows)
    ])


def _log_sum(compiled, summed, layers, fixed: dict, chunk: int) -> float:
    total = -np.inf
    for state in chunks(layers, chunk):
        rows = len(next(iter(state.values()))) if state else 1
        full = {**{k: np.repeat(v, rows, axis=0) for k, v in fixed.items()}, **state}
        if not full:
            full = {}
        free = np.asarray(_host(compiled.free_energy(full, summed=summed)), dtype=np.float64)
        total = np.logaddexp(total, logsumexp(-free))
    return float(total)


def log_likelihood(compiled, data, log_z, max_states: int = MAX_STATES):
    """log p(observed row) for each row: -F(data) - log Z, latent kept layers summed by enumeration."""
    from ..runtime.train import as_data

    data = as_data(compiled, data)
    observed = set(data)
    choices = []
    for summed, (kept, _) in compiled.free_energies.items():
        latent = [n for n in kept if n not in observed]
        try:
            layers = [digits(compiled, n) for n in latent]
        except DSLError:
            continue
        choices.append((log2_count(layers), summed, layers))
    if not choices:
        raise DSLError(f"model {compiled.model.name}: no free energy leaves only discrete latent layers to sum")
    size, summed, layers = min(choices, key=lambda c: c[0])
    if 2**size > max_states:
        raise DSLError(f"log-likelihood needs 2^{size:.1f} latent states per row; use lower_bound")
    rows = len(next(iter(data.values())))
    if not layers:
        free = np.asarray(_host(compiled.free_energy(data, summed=summed)), dtype=np.float64)
        return -free - log_z
    result = np.full(rows, -np.inf)
    for state in chunks(layers):
        count = len(next(iter(state.values())))
        full = {**{k: np.repeat(v, count, axis=0) for k, v in data.items()},
                **{k: np.tile(v, (rows,) + (1,) * (v.ndim - 1)) for k, v in state.items()}}
        free = np.asarray(_host(compiled.free_energy(full, summed=summed)), dtype=np.float64).reshape(rows, count)
        result = np.logaddexp(result, logsumexp(-free, axis=1))
    return result - log_z


def exact_log_likelihood(compiled, data) -> np.ndarray:
    """log p(row) per row with log Z enumerated: a monitor for fit (monitor=[exact_log_likelihood])."""
    return log_likelihood(compiled, data, exact_log_z(compiled))
