"""RAISE, reverse annealed importance sampling (Burda, Grosse and Salakhutdinov 2015): the conservative side.

AIS estimates log Z and tends to underestimate it, which makes test
log-likelihoods optimistic. RAISE instead estimates each test row's
log-likelihood under the annealing model p_ann, the forward AIS chain read
as a generative process: draw v_0 from the base model, then v_k ~ T_k(. | v_{k-1})
for k = 1..K. The reverse chain is the proposal. It starts at the test row
v_K = v and draws v_{k-1} ~ T_k(. | v_k) downwards. Each T_k is the model's
Gibbs sweep at beta_k, reversible with respect to f_k = exp(-F_beta_k),
with the summed-out layers summed out. The importance weight is then

    w = p_0(v_0) * prod over k of f_k(v_k) / f_k(v_{k-1}),

an unbiased estimate of p_ann(v). Its logarithm is, by Jensen, a
stochastic lower bound on log p_ann(v), and p_ann tends to the model as the
schedule gets finer. Averaged with AIS's optimistic figure, the two bracket
the truth in practice.

The intermediate distributions, base model and transitions are those of
`evaluate.ais`, so the two estimators share a schedule. The rows must fill
every layer the free energy keeps (an RBM's, not a DBM's). Chain c (run r of
row i is chain i * runs + r) draws from its block's stream, as in AIS (ais.RunStreams),
so client= splits the chains into Dask tasks of whole blocks without changing the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DSLUnsupportedError
from ..runtime.gpu import to_host
from ..runtime.initialize import check_rows
from ..runtime.sampling import sweep_order
from ..runtime.stack import CompiledStack
from .ais import (BLOCK, RunStreams, _annealed, _base_energy, _base_terms, _log_partition, _transition, annealing,
                  base_model, checked_schedule, shared_fields)
from ..runtime.numerics import logsumexp
from .bound import log_measure
from .chains import threaded_weights


@dataclass
class RAISEEstimate:
    """Per-row log-likelihood estimates, each a stochastic lower bound under the annealing model."""

    log_likelihood: np.ndarray  # (rows,): log of the mean importance weight over the runs
    log_weights: np.ndarray  # (rows, runs)
    distributions: int

    @property
    def mean(self) -> float:
        """The mean over rows of RAISE's per-row log-likelihood estimates."""
        return float(np.mean(self.log_likelihood))

    def __str__(self) -> str:
        rows, runs = self.log_weights.shape
        return (f"RAISE mean log-likelihood {self.mean:.4f} over {rows} rows ({runs} runs, "
                f"{self.distributions} distributions; a stochastic lower bound)")


def raise_log_likelihood(compiled, data, base=None, runs: int = 100, schedule=None, seed: int = 0,
                         progress: bool = True, client=None, threads: int | None = None) -> RAISEEstimate:
    """RAISE estimates of log p(row) for the rows of `data`.

    base: the rows whose smoothed marginals define the base model (the
    training data, as for `ais`; default: `data` itself). client: a
    dask.distributed Client to split the chains over (pgmdsl.distributed.map_chains;
    the same estimate as the serial call). threads: without a client, the
    chains split over this many threads, as in ais (None: chosen there).
    """
    if isinstance(compiled, CompiledStack):
        raise DSLUnsupportedError("RAISE bounds an undirected model's log-likelihood; a deep belief network is "
                                  "evaluated through evaluate.stack_lower_bound")
    from ..runtime.train import as_data

    rows_data = as_data(compiled, data)
    if set(compiled.kept) != set(rows_data):
        raise DSLUnsupportedError(
            f"RAISE starts its chains at the rows, which must fill every layer the free energy keeps; "
            f"{compiled.model.name} keeps {', '.join(compiled.kept)} (use lower_bound for models with latent "
            "layers kept)")
    betas = checked_schedule(schedule, "a RAISE schedule")
    bases = base_model(compiled, as_data(compiled, base) if base is not None else rows_data)
    count = len(next(iter(rows_data.values())))
    check_rows(compiled, count * runs, f"RAISE: {count} rows x {runs} runs, the chains of {compiled.model.name}")
    starts = {k: np.repeat(v, runs, axis=0) for k, v in rows_data.items()}  # chain i * runs + r starts at row i
    if client is None:
        log_w = threaded_weights(reverse_weights, compiled, bases, betas, seed, count * runs, starts, BLOCK,
                                 progress, threads)
    else:
        from ..distributed import map_chains

        log_w = map_chains(client, compiled, "raise", bases, betas, seed, count * runs, starts)
    weights = log_w.reshape(count, runs)
    return RAISEEstimate(logsumexp(weights, axis=1) - np.log(runs), weights, len(betas) - 1)


def reverse_weights(compiled, bases: dict, betas: np.ndarray, seed: int, chains: range, starts: dict,
                    progress: bool = False, stop=None) -> np.ndarray:
    """The RAISE log weights of `chains` (a range of chain indices), started at `starts` (their rows), one batch;
    `stop` as in ais.forward_weights."""
    from tqdm.auto import tqdm

    xp, dtype = compiled.xp, compiled.dtype
    state = {k: xp.asarray(v, dtype=dtype) for k, v in starts.items()}
    log_z_base = _log_partition(compiled, bases)
    order = [n for n in sweep_order(compiled) if n in compiled.kept or n in compiled.marginalised]
    sampler = RunStreams(seed, chains, xp)
    pair = xp.zeros(2, dtype=dtype)

    def log_f(free, beta, base_energy):
        return -free - (1 - beta) * base_energy

    terms, shares = _base_terms(compiled, bases), annealing(bases)
    base_energy = _base_energy(compiled, state, bases, terms)
    shared = shared_fields(compiled, state, order)
    current = log_f(compiled.module.free_energy(compiled.params, state, 1.0, fields=shared), 1.0, base_energy)
    log_w = np.zeros(len(chains))
    for k in tqdm(range(len(betas) - 1, 0, -1), desc="RAISE", unit="beta", disable=not progress, mininterval=1.0):
        if stop is not None and stop.is_set():  # evaluate.chains: another thread failed or was interrupted
            break
        beta, below = float(betas[k]), float(betas[k - 1])
        _transition(compiled, state, order, shares, beta, sampler, shared)  # v_{k-1} ~ T_k(. | v_k)
        pair[0], pair[1] = beta, below
        shared = shared_fields(compiled, state, order)  # for this state's free energies and the next sweep
        free = compiled.module.free_energy(compiled.params, state, pair, fields=shared,
                                           precision_offsets=_annealed(compiled, bases, (beta, below)))
        base_energy = _base_energy(compiled, state, bases, terms)
        log_w += np.asarray(to_host(current - log_f(free[0], beta, base_energy)), dtype=np.float64)
        current = log_f(free[1], below, base_energy)  # log f_{k-1}(v_{k-1}): the next step's numerator
    # log p_0(v_0): the base model's observed units are independent (at beta = 0 the summed-out layers add
    # the same constant to log f_0 and to its log Z, so they cancel)
    log_w += np.asarray(to_host(-base_energy), dtype=np.float64) - log_z_base
    log_w += log_measure(compiled, state, {})  # p_0 ∝ measure(v_0) exp(-E_A(v_0)) (binomial's C(n, v_0))
    return log_w
