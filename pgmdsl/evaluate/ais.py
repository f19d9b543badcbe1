"""Annealed importance sampling for any compiled model (Salakhutdinov and Murray 2008).

The path runs from a base-rate model A (observed units independent, with the
logits of the smoothed data marginals; every other layer uniform), whose
log Z is known in closed form, to the model: p_beta ∝ exp(-(1-beta) E_A - beta E),
with the compiler's summed-out class marginalised analytically
(free_energy(..., beta)). Transitions are the model's own block-Gibbs sweeps
at inverse temperature beta (the base model enters as an extra field on the
observed layers). All runs advance together as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import units
from ..errors import DSLError, DSLUnsupportedError
from ..runtime.sampling import sweep_order
from ..runtime.gpu import to_host as _host


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
    """log Z with its spread: log(Z ± 3 standard errors), from `runs` importance weights."""

    log_z: float
    log_z_low: float
    log_z_high: float
    log_weights: np.ndarray
    log_z_base: float
    distributions: int

    def __str__(self) -> str:
        return (f"log Z = {self.log_z:.4f} (log(Z ± 3 s.e.) in [{self.log_z_low:.4f}, {self.log_z_high:.4f}], "
                f"{len(self.log_weights)} runs, {self.distributions} distributions)")


def base_rates(compiled, data: dict) -> dict:
    """Fields of the base model's observed units: logits of smoothed marginals (as in the authors' code)."""
    fields = {}
    for name, values in data.items():
        info = compiled.layers[name]
        if info["role"] == "input":
            raise DSLUnsupportedError("AIS for conditional models (input layers) is not supported")
        unit = units.get(info["unit"])
        try:
            fields[name] = unit.base_field(np.asarray(values, dtype=np.float64))
        except NotImplementedError:
            raise DSLUnsupportedError(
                f"AIS needs a base model for layer '{name}' ({info['unit']} units); only discrete observed layers have one"
            ) from None
    return fields


def _log_partition(compiled, fields: dict) -> float:
    """log Z of the base model's observed units (independent given their fields)."""
    return sum(units.get(compiled.layers[name]["unit"]).base_log_partition(f) for name, f in fields.items())


def _require_proper_base(compiled, name: str, what: str) -> None:
    """Refuse a layer whose units have no proper distribution at beta = 0 (the base model has no term for them)."""
    if units.get(compiled.layers[name]["unit"]).quadratic:
        raise DSLUnsupportedError(
            f"{what}: {compiled.layers[name]['unit']} layer '{name}' would have no quadratic term at beta = 0 "
            "(an improper distribution); use exact_log_z where the discrete side is small"
        )


def _base_energy(compiled, state: dict, fields: dict):
    xp = compiled.xp
    total = 0
    for name, field in fields.items():
        axes = tuple(range(1, state[name].ndim))
        total = total - xp.sum(state[name] * xp.asarray(field, dtype=compiled.dtype), axis=axes)
    return total


def ais(compiled, data, runs: int = 100, schedule=None, seed: int = 0, progress: bool = True) -> AISEstimate:
    """Estimate log Z by AIS; `data` gives the base model's marginals (an array or a dict)."""
    from tqdm.auto import tqdm

    from ..runtime.sampling import initial_state
    from ..runtime.train import as_data

    data = as_data(compiled, data)
    betas = default_schedule() if schedule is None else np.asarray(schedule, dtype=np.float64)
    if betas[0] != 0 or betas[-1] != 1 or np.any(np.diff(betas) <= 0):
        raise DSLError("an AIS schedule rises strictly from 0 to 1")
    fields = base_rates(compiled, data)
    for name in compiled.marginalised + compiled.kept:
        _require_proper_base(compiled, name, "AIS from a base-rate model")
    xp, dtype = compiled.xp, compiled.dtype
    rng = np.random.default_rng(seed)
    summed = compiled.marginalised
    kept = compiled.kept
    hidden_kept = [n for n in kept if n not in fields]
    # exact draws from the base model: observed units independent, other kept layers uniform
    given = {name: xp.asarray(units.get(compiled.layers[name]["unit"]).base_sample(f, runs, rng), dtype=dtype)
             for name, f in fields.items()}
    state = initial_state(compiled, runs, rng, given)
    state = {k: v for k, v in state.items() if k in kept}
    log_z_base = _log_partition(compiled, fields)
    log_z_base += sum(_count_log(compiled, n) for n in hidden_kept)
    log_z_base -= float(_host(compiled.module.free_energy(compiled.params, state, 0.0))[0])
    order = [n for n in sweep_order(compiled) if n in kept or n in summed]
    log_w = np.zeros(runs)
    pair = xp.zeros(2, dtype=dtype)
    sampler = rng if xp is np else compiled.random(seed)  # the generated samplers draw on the backend's device
    for k in tqdm(range(1, len(betas)), desc="AIS", unit="beta", disable=not progress, mininterval=1.0):
        previous, current = betas[k - 1], betas[k]
        pair[0], pair[1] = previous, current
        shared = shared_fields(compiled, state, order)
        free = compiled.module.free_energy(compiled.params, state, pair, fields=shared)
        base = _base_energy(compiled, state, fields)
        difference = (free[0] - free[1]) + (1 - previous) * base - (1 - current) * base
        log_w += np.asarray(_host(difference), dtype=np.float64)
        _transition(compiled, state, order, fields, float(current), sampler, shared)  # a Python float: float32 stays
    return _estimate(log_w, log_z_base, len(betas) - 1)


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


def _transition(compiled, state: dict, order, fields, beta: float, rng, shared=None) -> None:
    """One sweep at inverse temperature beta; `shared`: fields of the first layers, computed for this state."""
    xp = compiled.xp
    for name in order:
        offset = None
        if name in fields:
            offset = xp.asarray((1 - beta) * fields[name], dtype=compiled.dtype)
        given = {"field": shared[name]} if shared and name in shared else {}
        sample = getattr(compiled.module, f"sample_{name}")(compiled.params, state, rng, beta, offset, **given)
        state[name] = sample
    for name in compiled.marginalised:
        state.pop(name, None)


def _count_log(compiled, name: str) -> float:
    from ..runtime.states import digits

    return float(np.sum(np.log(np.asarray(digits(compiled, name).radices, dtype=np.float64))))


def _estimate(log_w: np.ndarray, log_z_base: float, distributions: int) -> AISEstimate:
    runs = len(log_w)
    top = log_w.max()
    w = np.exp(log_w - top)
    mean, spread = w.mean(), 3 * w.std(ddof=1) / np.sqrt(runs) if runs > 1 else 0.0
    log_z = top + np.log(mean) + log_z_base
    low = top + np.log(mean - spread) + log_z_base if mean > spread else -np.inf
    high = top + np.log(mean + spread) + log_z_base
    return AISEstimate(float(log_z), float(low), float(high), log_w, float(log_z_base), distributions)
