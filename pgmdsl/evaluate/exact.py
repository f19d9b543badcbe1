"""Exact log partition functions and log-likelihoods by enumeration.

log Z = log of the sum over the kept layers of exp(-F), where F is a free
energy the compiler derived with one colour class summed out analytically.
Of the free energies available, the one leaving the fewest states to
enumerate is used (an RBM 784x20 enumerates its 2^20 hidden states, with
the visible layer summed out). Sums are chunked and numerically stable.

Memory. Every sum here is over (row, state) pairs: the data or input rows
times the enumerated states (one row of nothing for an unconditional log Z).
A chunk of pairs holds, per pair, the row's layers repeated, the state
tiled, the summed layers' fields and softplus temporaries, all in the
compiled dtype, the state's int64 digits and float64 units as decoded
(runtime.states), a few float64 free energies, and for a summed layer of
jointly coupled units (update 'joint', mcrbm's covariance) its per-row
precision matrix and inverse: pair_bytes counts WORK_COPIES copies of a
whole state row (initialize.state_bytes), DECODE_BYTES per enumerated unit,
JOINT_COPIES units x units matrices per joint summed layer, and OUTPUT_BYTES. Chunks cover rows and states together, so no chunk's work
arrays exceed `memory` bytes, however many rows or states there are.

The default, EVALUATION_MEMORY, is a working set derived from
initialize.MEMORY_BUDGET rather than the budget itself: MEMORY_BUDGET bounds
what a user's sizes make one array take, and those arrays (the data, the
parameters, a trainer's chains) are still alive while an evaluation runs
beside them, so its temporaries get a fraction of it. Chunks of that size
(hundreds of thousands of pairs) already keep NumPy's loops and BLAS
products long enough that bigger ones run no faster. Only a budget too
small for one row times one state is refused, before anything is allocated.
"""

from __future__ import annotations

from math import prod

import numpy as np
from ..runtime.numerics import logsumexp

from ..errors import DSLError
from ..runtime.initialize import MEMORY_BUDGET, state_bytes
from ..runtime.states import chunks, digits, log2_count
from ..runtime.gpu import to_host as _host

MAX_STATES = 2**25
EVALUATION_MEMORY = MEMORY_BUDGET // 8  # bytes of work arrays one enumeration chunk may take (memory= overrides)
WORK_COPIES = 4  # state rows a pair's work arrays take: the row and state themselves, fields, softplus temporaries
OUTPUT_BYTES = 5 * 8  # float64s per pair: the free energy, its host copy, its negation, logsumexp's shift and exp
DECODE_BYTES = 3 * 8  # per enumerated unit: its int64 digit, its float64 value, the counting's divmod temporaries
JOINT_COPIES = 4  # float64 units x units matrices per row of a joint summed layer (linear algebra may upcast float32)


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


def pair_bytes(compiled, summed: tuple[str, ...], layers: list) -> int:
    """Bytes of work arrays one (row, state) pair takes, enumerating `layers` with `summed` summed out (module docstring)."""
    joint = sum(prod(compiled.layers[n]["shape"]) ** 2 for n in summed if compiled.layers[n]["update"] == "joint")
    return (WORK_COPIES * state_bytes(compiled.layers, compiled.dtype) + DECODE_BYTES * sum(prod(d.shape) for d in layers)
            + JOINT_COPIES * joint * 8 + OUTPUT_BYTES)


def chunk_shape(compiled, summed: tuple[str, ...], layers: list, rows: int, memory: int | None = None) -> tuple[int, int]:
    """(rows, states) per chunk: all the states of `layers` that fit `memory` bytes, then as many rows as fit beside them.

    memory: bytes of work arrays per chunk (None: EVALUATION_MEMORY, read at call time).
    """
    memory = EVALUATION_MEMORY if memory is None else memory
    states = prod(d.count for d in layers)
    per_pair = pair_bytes(compiled, summed, layers)
    pairs = memory // per_pair
    if pairs < 1:
        raise DSLError(f"evaluating {compiled.model.name}: one row x one state needs {per_pair} bytes of work arrays, "
                       f"more than memory={memory} bytes; give memory= at least {per_pair}")
    per_chunk = min(states, pairs)
    return max(1, min(rows, pairs // per_chunk)), per_chunk


def exact_log_z(compiled, inputs: dict | None = None, max_states: int = MAX_STATES, memory: int | None = None,
                client=None):
    """log Z, exactly. For a conditional model (input layers) give `inputs`: one log Z per row.

    memory: bytes of work arrays per chunk (None: EVALUATION_MEMORY; see the module docstring).
    client: a dask.distributed Client: the states are numbered and split into one contiguous range per worker
    thread (pgmdsl.distributed.map_enumeration), each summed where it runs; the partial sums are added here, so
    the result is the serial one to rounding for any number of workers.
    """
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
    fixed = {k: np.asarray(v, dtype=compiled.dtype) for k, v in (inputs or {}).items()}
    if client is not None:
        from ..distributed import map_enumeration

        sums = map_enumeration(client, compiled, fixed, memory)
    else:
        sums = _log_sums(compiled, summed, layers, fixed, memory)
    return float(sums[0]) if not input_layers else sums


def log_sums_of_span(compiled, fixed: dict, span: range, memory: int | None) -> np.ndarray:
    """One task's share of exact_log_z: the log sum over the states numbered in `span`, for each row of `fixed`."""
    summed, layers = cheapest(compiled)
    return _log_sums(compiled, summed, layers, fixed, memory, span)


def state_count(compiled) -> int:
    """How many states exact_log_z enumerates (the cheapest free energy's kept layers)."""
    _, layers = cheapest(compiled)
    return prod(d.count for d in layers)


def _log_sums(compiled, summed, layers, fixed: dict, memory: int | None, span: range | None = None) -> np.ndarray:
    """log of the sum over the states of `layers` (those numbered in `span`, default all) of exp(-F), for each row
    of `fixed` (no layers: one row).

    States are decoded once per chunk of them; the rows beside each chunk go
    through in chunks too, so every free-energy call sees at most
    chunk_shape's rows x states pairs.
    """
    rows = len(next(iter(fixed.values()))) if fixed else 1
    row_chunk, state_chunk = chunk_shape(compiled, summed, layers, rows, memory)
    result = np.full(rows, -np.inf)
    for state in chunks(layers, state_chunk, span):
        count = len(next(iter(state.values()))) if state else 1
        state = {k: np.asarray(v, dtype=compiled.dtype) for k, v in state.items()}
        for start in range(0, rows, row_chunk):
            part = {k: v[start:start + row_chunk] for k, v in fixed.items()}
            size = len(next(iter(part.values()))) if part else 1
            full = {**{k: np.repeat(v, count, axis=0) for k, v in part.items()},
                    **{k: np.tile(v, (size,) + (1,) * (v.ndim - 1)) for k, v in state.items()}}
            free = np.asarray(_host(compiled.free_energy(full, summed=summed)), dtype=np.float64)
            result[start:start + size] = np.logaddexp(result[start:start + size],
                                                      logsumexp(-free.reshape(size, count), axis=1))
    return result


def log_likelihood(compiled, data, log_z, max_states: int = MAX_STATES, memory: int | None = None):
    """log p(observed row) for each row: -F(data) - log Z, latent kept layers summed by enumeration.

    memory: bytes of work arrays per chunk (None: EVALUATION_MEMORY; see the module docstring).
    """
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
    return _log_sums(compiled, summed, layers, data, memory) - log_z


def exact_log_likelihood(compiled, data) -> np.ndarray:
    """log p(row) per row with log Z enumerated: a monitor for fit (monitor=[exact_log_likelihood])."""
    return log_likelihood(compiled, data, exact_log_z(compiled))
