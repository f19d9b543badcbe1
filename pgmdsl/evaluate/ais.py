"""Annealed importance sampling for any compiled model (Salakhutdinov and Murray 2008).

The path runs from a base model A of independent units, whose log Z is known
in closed form, to the model: p_beta ∝ exp(-(1-beta) E_A - beta E), with the
compiler's summed-out class marginalised analytically (free_energy(..., beta)).
Each unit type fits A to the data (units.base.UnitType.fit_base: the smoothed
marginals of discrete units, the means and variances of real-valued ones);
layers no data describes are uniform, or standard normal for quadratic types,
so Gaussian and rectified layers are proper at beta = 0. Transitions are the
model's own block-Gibbs sweeps at inverse temperature beta (the base model
enters as an extra field and precision). All runs advance together as one batch.

Seeding. Chain c (run r of input row i is chain i * runs + r) draws every
number it uses, from its base draw to its last sweep, from the stream of its
block of BLOCK chains, np.random.default_rng([seed, c // BLOCK])
(RunStreams), whichever batch the block shares. So the chains computed
elsewhere in whole blocks (ais(..., client=): the runs split into Dask tasks
on block boundaries, pgmdsl.distributed) give the same numbers as the serial
call. The batch stays one vectorised array:
each block's draws are written by its generator into its rows
(Generator.random(out=)), one call per block per draw: a stream per chain
cost 100 calls a distribution, half of AIS's time on an RBM 784 x 500.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import units
from ..errors import DSLError, DSLUnsupportedError
from ..runtime.initialize import check_rows
from ..runtime.sampling import sweep_order
from ..runtime.gpu import to_host as _host
from ..runtime.stack import CompiledStack
from .bound import log_measure
from .chains import threaded_weights
from .stack import top_rows


def default_schedule() -> np.ndarray:
    """The authors' schedule: steps of 1e-3 to 0.5, 1e-4 to 0.9, 1e-5 to 1: 14,500 distributions."""
    return np.concatenate([
        np.linspace(0, 0.5, 500, endpoint=False),
        np.linspace(0.5, 0.9, 4000, endpoint=False),
        np.linspace(0.9, 1.0, 10000, endpoint=False),
        [1.0],
    ])


@dataclass
class AISEstimate:
    """log Z with its spread: log(Z ± 3 standard errors), from `runs` importance weights.

    For a conditional model every field but `distributions` is an array with one entry (row) per input row.
    """

    log_z: float | np.ndarray
    log_z_low: float | np.ndarray
    log_z_high: float | np.ndarray
    log_weights: np.ndarray
    log_z_base: float | np.ndarray
    distributions: int

    @property
    def effective_sample_size(self) -> float | np.ndarray:
        """The runs' effective sample size (sum w)^2 / sum w^2 (Kong 1992): near `runs` when the weights are
        even, near 1 when one run dominates and the estimate rests on it; one per row for a conditional model."""
        return effective_sample_size(self.log_weights)

    def __str__(self) -> str:
        if np.ndim(self.log_z):
            widest = float(np.max(self.log_z_high - self.log_z_low))
            return (f"log Z(input) for {len(self.log_z)} input rows: mean {np.mean(self.log_z):.4f}, widest "
                    f"log(Z ± 3 s.e.) interval {widest:.4f} ({self.log_weights.shape[1]} runs per row, "
                    f"{self.distributions} distributions)")
        return (f"log Z = {self.log_z:.4f} (log(Z ± 3 s.e.) in [{self.log_z_low:.4f}, {self.log_z_high:.4f}], "
                f"{len(self.log_weights)} runs, {self.distributions} distributions; effective sample size "
                f"{self.effective_sample_size:.1f})")


def effective_sample_size(log_weights) -> float | np.ndarray:
    """(sum w)^2 / sum w^2 over the last axis, from log w: exp(2 logsumexp(log w) - logsumexp(2 log w)), which
    neither overflows nor underflows where the weights themselves would (AIS's log w span hundreds of nats)."""
    from scipy.special import logsumexp

    log_weights = np.asarray(log_weights, dtype=np.float64)
    ess = np.exp(2 * logsumexp(log_weights, axis=-1) - logsumexp(2 * log_weights, axis=-1))
    return float(ess) if np.ndim(ess) == 0 else ess


def base_model(compiled, data: dict) -> dict:
    """The base model's units, independent: {layer: units.base.Base} for every layer the path needs one for.

    Observed kept layers are fitted to `data` (smoothed marginals; a Gaussian
    with the data's means and variances for quadratic types), the other kept
    layers are uniform (discrete) or standard (quadratic); summed quadratic
    layers get the standard precision, which keeps them proper at beta = 0.
    """
    bases = {}
    for name in compiled.kept + compiled.marginalised:
        info = compiled.layers[name]
        if info["role"] == "input":  # given, never annealed
            continue
        unit = units.get(info["unit"])
        try:
            if name in data and name in compiled.kept:
                bases[name] = unit.fit_base(np.asarray(data[name], dtype=np.float64))
            elif name in compiled.kept or unit.quadratic:
                bases[name] = unit.standard_base(tuple(info["shape"]))
        except NotImplementedError:
            raise DSLUnsupportedError(
                f"AIS needs a base model for layer '{name}', and {info['unit']} units have none") from None
    return bases


def base_rates(compiled, data: dict) -> dict:
    """The fields of the base model's observed units (logits of smoothed marginals for binary units)."""
    bases = base_model(compiled, data)
    return {name: bases[name].field for name in data if name in bases}


def _log_partition(compiled, bases: dict) -> float:
    """log Z of the base model's kept units (the summed ones are in the free energy at beta = 0)."""
    return sum(units.get(compiled.layers[name]["unit"]).base_log_partition(base)
               for name, base in bases.items() if name in compiled.kept)


def _base_terms(compiled, bases: dict) -> list:
    """The kept layers' base fields (and halved precisions, or None), flattened, in the backend's dtype: once per run."""
    def flat(values, shape):
        return compiled.xp.asarray(np.broadcast_to(values, shape).reshape(-1), dtype=compiled.dtype)

    terms = []
    for name, base in bases.items():
        if name not in compiled.kept or (base.precision is None and not np.any(base.field)):
            continue  # a uniform base has energy 0: no product
        shape = tuple(compiled.layers[name]["shape"])
        half_precision = None if base.precision is None else flat(0.5 * base.precision, shape)
        terms.append((name, flat(base.field, shape), half_precision))
    return terms


def _base_energy(compiled, state: dict, bases: dict, terms: list | None = None):
    """E_A of the kept layers' states: -field . x (+ precision . x^2 / 2), one matrix-vector product per term.

    terms: _base_terms(compiled, bases), when the caller keeps them.
    """
    total = 0
    for name, field, half_precision in _base_terms(compiled, bases) if terms is None else terms:
        x = state[name].reshape(len(state[name]), -1)
        energy = -(x @ field)
        if half_precision is not None:
            energy += (x * x) @ half_precision
        total = total + energy
    return total


def _annealed(compiled, bases: dict, betas) -> dict:
    """The base's share of the summed quadratic layers' precision at each of `betas` (free_energy's offsets)."""
    offsets = {}
    for name, base in bases.items():
        if name in compiled.marginalised and base.precision is not None:
            share = np.reshape(1 - np.asarray(betas, dtype=np.float64), np.shape(betas) + (1,) * (base.precision.ndim + 1))
            offsets[name] = compiled.xp.asarray(share * base.precision, dtype=compiled.dtype)
    return offsets or None


def base_draws(compiled, bases: dict, runs: int, rng) -> dict:
    """`runs` exact draws of the kept layers from the base model."""
    xp = compiled.xp
    return {name: xp.asarray(units.get(compiled.layers[name]["unit"]).base_sample(base, runs, rng), dtype=compiled.dtype)
            for name, base in bases.items() if name in compiled.kept}


def ais(compiled, data, runs: int = 100, schedule=None, seed: int = 0, progress: bool = True,
        inputs: dict | None = None, client=None, threads: int | None = None) -> AISEstimate:
    """Estimate log Z by AIS; `data` gives the base model's marginals (an array or a dict).

    For a conditional model (input layers) give `inputs`: log Z(input) is
    estimated for every input row, the rows' runs advancing as one batch
    (rows x runs chains), and the estimate's fields are arrays, one per row.
    A deep belief network's only normaliser is its top level's: a stack
    anneals that level, its base model fitted to `data` passed up to it.
    client: a dask.distributed Client; the chains are split into one task per
    worker thread (pgmdsl.distributed.map_chains), with the same estimate as
    the serial call (module docstring: each chain has its own stream).
    threads: without a client, the chains run in this many threads of whole
    blocks, each with one BLAS thread (None: as many as BLAS may use, on the
    NumPy backend, when each share is large; evaluate.chains). The draws are
    the same for any number; float32 products of fewer rows may round apart.
    """
    if isinstance(compiled, CompiledStack):
        return ais(compiled.levels[-1], top_rows(compiled, data), runs, schedule, seed, progress, inputs, client,
                   threads)
    from ..runtime.train import as_data, observed_layers

    given = _inputs(compiled, inputs)
    data = as_data(compiled, data, layers=[n for n in observed_layers(compiled) if n not in given])
    betas = checked_schedule(schedule, "an AIS schedule")
    bases = base_model(compiled, data)
    rows = len(next(iter(given.values()))) if given else 1
    check_rows(compiled, rows * runs, f"AIS: {rows} input rows x {runs} runs, the chains of {compiled.model.name}")
    repeated = {k: np.repeat(v, runs, axis=0) for k, v in given.items()}  # chain i * runs + r has row i's inputs
    log_z_base = _base_log_z(compiled, bases, {k: v[:1] for k, v in repeated.items()}, seed)
    if client is None:
        log_w = threaded_weights(forward_weights, compiled, bases, betas, seed, rows * runs, repeated, BLOCK,
                                 progress, threads)
    else:
        from ..distributed import map_chains

        log_w = map_chains(client, compiled, "ais", bases, betas, seed, rows * runs, repeated)
    if not given:
        return _estimate(log_w, log_z_base, len(betas) - 1)
    return _row_estimates([_estimate(w, log_z_base, len(betas) - 1) for w in log_w.reshape(rows, runs)])


def checked_schedule(schedule, what: str) -> np.ndarray:
    """The inverse temperatures as float64 (the default schedule for None), refused unless rising from 0 to 1."""
    betas = default_schedule() if schedule is None else np.asarray(schedule, dtype=np.float64)
    if betas.ndim != 1 or len(betas) < 2 or betas[0] != 0 or betas[-1] != 1 or np.any(np.diff(betas) <= 0):
        raise DSLError(f"{what} rises strictly from 0 to 1")
    return betas


BLOCK = 10  # chains per stream: block b (chains b*BLOCK ...) draws from default_rng([seed, b])


class RunStreams:
    """A numpy-Generator stand-in for a batch of chains whose block b of BLOCK chains draws from
    default_rng([seed, b]).

    The generated samplers and the unit types' base draws ask for arrays with
    the chains first (random, standard_normal, integers, binomial); each
    block's rows come from its own generator, in one call, so a chain's
    numbers do not depend on which other blocks share its batch (module
    docstring). `chains` must start at a block's start (tasks split on
    block boundaries: pgmdsl.distributed). Arrays are returned on the
    backend `xp` (drawn on the host: a GPU run stays identical to the CPU's,
    at the price of a copy per draw).
    """

    def __init__(self, seed: int, chains: range, xp=np):
        if chains.start % BLOCK:
            raise ValueError(f"RunStreams: chains start at {chains.start}, not at a block of {BLOCK}")
        self.blocks = [(np.random.default_rng([seed, start // BLOCK]), start - chains.start,
                        min(start + BLOCK, chains.stop) - chains.start) for start in range(chains.start, chains.stop, BLOCK)]
        self.count = len(chains)
        self.xp = xp

    def _size(self, size) -> tuple:
        size = (size,) if np.ndim(size) == 0 else tuple(size)
        if not size or size[0] != self.count:
            raise ValueError(f"RunStreams draws {self.count} chains' rows, asked for shape {size}")
        return size

    def _filled(self, method: str, size, dtype):
        out = np.empty(self._size(size), dtype=dtype)
        for generator, start, stop in self.blocks:
            getattr(generator, method)(dtype=dtype, out=out[start:stop])
        return self.xp.asarray(out)

    def random(self, size, dtype=np.float64):
        return self._filled("random", size, dtype)

    def standard_normal(self, size, dtype=np.float64):
        return self._filled("standard_normal", size, dtype)

    def integers(self, low, high, size):
        size = self._size(size)
        return self.xp.asarray(np.concatenate([g.integers(low, high, (stop - start,) + size[1:])
                                               for g, start, stop in self.blocks]))

    def binomial(self, n, p, size=None):
        n, p = _host(n), _host(p)
        size = self._size(np.broadcast(n, p).shape if size is None else size)
        n, p = np.broadcast_to(n, size), np.broadcast_to(p, size)
        return self.xp.asarray(np.concatenate([g.binomial(n[start:stop], p[start:stop])
                                               for g, start, stop in self.blocks]))


def bases_arrays(bases: dict) -> dict:
    """{layer: (field, precision or None)}: a base model as plain arrays, to send to another process."""
    return {name: (base.field, base.precision) for name, base in bases.items()}


def bases_from_arrays(arrays: dict) -> dict:
    """The inverse of bases_arrays."""
    return {name: units.base.Base(field, precision) for name, (field, precision) in arrays.items()}


def _base_log_z(compiled, bases: dict, given: dict, seed: int) -> float:
    """log Z of the path's first distribution: the base's kept units and what beta = 0 leaves of the free energy.

    F at beta 0 does not depend on the state (every coupling is scaled by beta),
    so chain 0's base draw, with the first input row, serves.
    """
    xp, dtype = compiled.xp, compiled.dtype
    state = base_draws(compiled, bases, 1, RunStreams(seed, range(1), xp))
    state.update({k: xp.asarray(v, dtype=dtype) for k, v in given.items()})
    log_z = _log_partition(compiled, bases)
    log_z -= float(_host(compiled.module.free_energy(compiled.params, state, 0.0,
                                                     precision_offsets=_annealed(compiled, bases, 0.0)))[0])
    return log_z - float(np.atleast_1d(log_measure(compiled, state, {}))[0])  # F at beta 0 holds -log measure(x)


def forward_weights(compiled, bases: dict, betas: np.ndarray, seed: int, chains: range, given: dict,
                    progress: bool = False, stop=None) -> np.ndarray:
    """The AIS log importance weights of `chains` (a range of chain indices), one batch; `stop`: a
    threading.Event that ends the loop early (its weights are then unfinished: evaluate.chains discards them).

    given: the input layers' rows of these chains (conditional models), {} otherwise.
    """
    from tqdm.auto import tqdm

    xp, dtype = compiled.xp, compiled.dtype
    sampler = RunStreams(seed, chains, xp)
    state = base_draws(compiled, bases, len(chains), sampler)
    state.update({k: xp.asarray(v, dtype=dtype) for k, v in given.items()})
    order = [n for n in sweep_order(compiled) if n in compiled.kept or n in compiled.marginalised]
    log_w = np.zeros(len(chains))
    pair = xp.zeros(2, dtype=dtype)
    terms, shares = _base_terms(compiled, bases), annealing(bases)
    for k in tqdm(range(1, len(betas)), desc="AIS", unit="beta", disable=not progress, mininterval=1.0):
        if stop is not None and stop.is_set():  # evaluate.chains: another thread failed or was interrupted
            break
        previous, current = betas[k - 1], betas[k]
        pair[0], pair[1] = previous, current
        shared = shared_fields(compiled, state, order)
        free = compiled.module.free_energy(compiled.params, state, pair, fields=shared,
                                           precision_offsets=_annealed(compiled, bases, (previous, current)))
        base = _base_energy(compiled, state, bases, terms)  # (1 - previous) E_A - (1 - current) E_A:
        difference = (free[0] - free[1]) + (current - previous) * base
        log_w += np.asarray(_host(difference), dtype=np.float64)
        _transition(compiled, state, order, shares, float(current), sampler, shared)  # a Python float: float32 stays
    return log_w


def _inputs(compiled, inputs: dict | None) -> dict:
    """The input layers' rows of a conditional model (checked), or {} for a model without input layers."""
    names = [n for n, info in compiled.layers.items() if info["role"] == "input"]
    if not names:
        if inputs:
            raise DSLError(f"model {compiled.model.name} has no input layers; inputs= is for conditional models")
        return {}
    if inputs is None or any(n not in inputs for n in names):
        raise DSLError(f"model {compiled.model.name} is conditional on {', '.join(names)}: give inputs=")
    given = {n: np.asarray(inputs[n], dtype=np.float64) for n in names}
    for name, values in given.items():
        shape = tuple(compiled.layers[name]["shape"])
        if values.ndim != len(shape) + 1 or values.shape[1:] != shape or not np.all(np.isfinite(values)):
            raise DSLError(f"inputs[{name!r}] must be finite rows of shape {shape}, got shape {values.shape}")
    if len({len(v) for v in given.values()}) != 1:
        raise DSLError("every input layer needs the same number of rows")
    return given


def _row_estimates(estimates: list) -> AISEstimate:
    """One AISEstimate whose fields are arrays, one entry per input row."""
    return AISEstimate(*(np.array([getattr(e, f) for e in estimates]) for f in
                         ("log_z", "log_z_low", "log_z_high", "log_weights", "log_z_base")),
                       estimates[0].distributions)


def shared_fields(compiled, state: dict, order) -> dict:
    """The fields of the summed-out layers a sweep draws first: the free energy of `state` and the sweep's
    first draws both need them, so one product serves both (a third of the products of an RBM's AIS step)."""
    fields, module, rows = {}, compiled.module, len(next(iter(state.values())))
    for name in order:
        info = compiled.layers[name]
        if name in compiled.kept or info["update"] == "unitwise":
            break
        field = getattr(module, f"field_{name}")(compiled.params, state)
        fields[name] = compiled.xp.broadcast_to(field, (rows,) + tuple(info["shape"]))
    return fields


def annealing(bases: dict) -> dict:
    """{layer: (field or None, precision or None)}: the base's share of each layer's conditional, found once per
    run so a sweep skips uniform bases (no field, no precision) without looking at their arrays again."""
    return {name: (base.field if np.any(base.field) else None, base.precision) for name, base in bases.items()}


def _transition(compiled, state: dict, order, shares: dict, beta: float, rng, shared=None) -> None:
    """One sweep at inverse temperature beta; `shared`: fields of the first layers, computed for this state.

    shares: annealing(bases). The base model enters each layer's conditional
    as (1 - beta) times its field and precision.
    """
    xp = compiled.xp
    for name in order:
        extra = {"field": shared[name]} if shared and name in shared else {}
        field, precision = shares.get(name, (None, None))
        offset = None if field is None else xp.asarray((1 - beta) * field, dtype=compiled.dtype)
        if precision is not None:
            extra["precision_offset"] = xp.asarray((1 - beta) * precision, dtype=compiled.dtype)
        state[name] = getattr(compiled.module, f"sample_{name}")(compiled.params, state, rng, beta, offset, **extra)
    for name in compiled.marginalised:
        state.pop(name, None)


def _estimate(log_w: np.ndarray, log_z_base: float, distributions: int) -> AISEstimate:
    runs = len(log_w)
    top = log_w.max()
    w = np.exp(log_w - top)
    mean, spread = w.mean(), 3 * w.std(ddof=1) / np.sqrt(runs) if runs > 1 else 0.0
    log_z = top + np.log(mean) + log_z_base
    low = top + np.log(mean - spread) + log_z_base if mean > spread else -np.inf
    high = top + np.log(mean + spread) + log_z_base
    return AISEstimate(float(log_z), float(low), float(high), log_w, float(log_z_base), distributions)
