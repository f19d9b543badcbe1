"""Parallel tempering (Swendsen and Wang 1986; Geyer 1991) as the negative phase of any compiled model.

Persistent chains run at every inverse temperature of a ladder 1 = b_0 >
b_1 > ... > b_{T-1} > 0, each drawing from p_b(x) ∝ exp(-F_b(x)), the
tempered model with its summed-out layers summed (F_b(x) = -log sum_h
exp(-b E(x, h)); a model that sums nothing out has F_b = b E). A round is
k block-Gibbs sweeps at every temperature with the tempered conditionals
(sample_L(..., beta=b)), then Metropolis exchanges between neighbours,
the pairs (0, 1), (2, 3), ... on even rounds and (1, 2), (3, 4), ... on
odd ones. Exchanging x (at b_i) and y (at b_j) is accepted with

    log a = F_i(x) + F_j(y) - F_i(y) - F_j(x)

(for F_b = b E this is (b_i - b_j)(E(x) - E(y))), from the free energies at
both temperatures in one generated call (free_energy with beta=[b_i, b_j]).
The chains at b = 1 are the model phase. For RBM training: Desjardins et
al. (2010), Cho, Raiko and Ilin (2010); Fischer and Igel (2010) show that it
avoids CD's divergence on bars-and-stripes.

The default ladder is 10 inverse temperatures spaced geometrically from 1
down to 0.1: the ratio of neighbours is then constant, which for a
system whose heat capacity varies slowly with temperature gives about the
same exchange rate at every pair (Kofke 2002; Earl and Deem 2005), so no
pair is the bottleneck; at b = 0.1 the fields are a tenth of the model's
and the hottest chain mixes within a few sweeps for the models trained
here. Each chain column keeps one input (and clamped values) at every
temperature, so exchanges compare states of the same conditional model.
"""

from __future__ import annotations

import numpy as np

from ...errors import DSLError
from ..gpu import to_host
from ..initialize import check_rows
from .base import NegativePhase

DEFAULT_TEMPERATURES = 10
LOWEST_BETA = 0.1


def ladder(temperatures=None) -> np.ndarray:
    """The inverse temperatures, 1 first and decreasing: a count (geometric from 1 to LOWEST_BETA) or given values."""
    if temperatures is None:
        temperatures = DEFAULT_TEMPERATURES
    if isinstance(temperatures, (int, np.integer)):
        return LOWEST_BETA ** (np.arange(temperatures) / (temperatures - 1))
    return np.sort(np.asarray(temperatures, dtype=np.float64))[::-1].copy()


def swap_log_acceptance(compiled, first: dict, second: dict, betas):
    """Per row, log a of exchanging `first` (at betas[0]) and `second` (at betas[1]): kept layers, rows first."""
    xp = compiled.xp
    rows = len(next(iter(first.values())))
    pair = {k: xp.concatenate((first[k], second[k])) for k in first}
    free = compiled.module.free_energy(compiled.params, pair, xp.asarray(betas, dtype=compiled.dtype))
    return free[0, :rows] + free[1, rows:] - free[0, rows:] - free[1, :rows]


class ParallelTempering(NegativePhase):
    """Persistent chains at every inverse temperature (options.temperatures), exchanged between neighbours.

    State: `replicas` {layer: (T, chains) + shape} for every kept layer (None
    until the first round), `rounds` (the parity of the next exchanges) and
    per neighbouring pair the exchanges accepted and attempted. chains is
    None: the trainer's checkpoint member train/chains is PCD's form.
    """

    standalone = True
    settings = ("temperatures",)

    def __init__(self, gibbs, options):
        super().__init__(gibbs, options)
        c = gibbs.c
        summed = [n for n in gibbs.clamp if n in c.marginalised]
        if summed:
            raise DSLError(f"method 'pt' cannot clamp {', '.join(summed)}: model {c.model.name} sums "
                           f"{'it' if len(summed) == 1 else 'them'} out of the free energy its exchanges use")
        self.betas = ladder(options.temperatures)
        self.count = options.chains or options.batch_size
        self.replicas = None
        self.rounds = 0
        pairs = len(self.betas) - 1
        self.accepted, self.attempted = np.zeros(pairs, np.int64), np.zeros(pairs, np.int64)
        self._mark = (self.accepted.copy(), self.attempted.copy())  # the counts at the last metrics()

    @classmethod
    def check_memory(cls, compiled, options, batch: int) -> None:
        chains, temperatures = options.chains or options.batch_size, len(ladder(options.temperatures))
        given = "" if options.chains else " (batch_size's; chains= sets them apart)"
        check_rows(compiled, batch + temperatures * chains,
                   f"fit: {chains} persistent chains{given} at each of {temperatures} temperatures and a batch of "
                   f"{batch} rows of {compiled.model.name}")

    # ---- the trainer's call ----
    def model_phase(self, positive: dict, rows: int, rng) -> dict:
        g = self.gibbs
        g.fill_means(positive)
        self._start()
        for name in g.frozen:  # every temperature of a column sees the batch's inputs (when the counts agree)
            if len(positive[name]) == self.count:
                self.replicas[name][...] = positive[name]
        self.advance(rng)
        return g.fill_means({k: v[0].copy() for k, v in self.replicas.items()})

    # ---- one round ----
    def advance(self, rng) -> None:
        """k sweeps at every temperature, then the exchanges of this round's pairs."""
        g = self.gibbs
        self._start()
        drawn = [n for n in self.replicas if n not in g.frozen]
        for t, beta in enumerate(self.betas):
            state = {k: v[t] for k, v in self.replicas.items()}
            for _ in range(self.options.k):
                g.sweep(state, rng, float(beta))
            for name in drawn:
                self.replicas[name][t] = state[name]
        self._exchange(rng)
        self.rounds += 1

    def _exchange(self, rng) -> None:
        xp, dtype, n = self.gibbs.c.xp, self.gibbs.c.dtype, self.count
        for t in range(self.rounds % 2, len(self.betas) - 1, 2):
            log_a = swap_log_acceptance(self.gibbs.c, {k: v[t] for k, v in self.replicas.items()},
                                        {k: v[t + 1] for k, v in self.replicas.items()}, self.betas[t:t + 2])
            accept = rng.random(n, dtype=dtype) < xp.exp(xp.minimum(log_a, 0))
            for name, v in self.replicas.items():
                if name in self.gibbs.frozen:
                    continue
                mask = accept.reshape((n,) + (1,) * (v.ndim - 2))
                here, there = v[t], v[t + 1]
                v[t], v[t + 1] = xp.where(mask, there, here), xp.where(mask, here, there)
            self.accepted[t] += int(xp.sum(accept))
            self.attempted[t] += n

    def _start(self) -> None:
        """Every temperature of a column starts at the same state: the trainer's from a random training row."""
        if self.replicas is None:
            xp, temperatures = self.gibbs.c.xp, len(self.betas)
            start = self.gibbs.new_chains(self.count)
            self.replicas = {k: xp.broadcast_to(v, (temperatures,) + v.shape).copy() for k, v in start.items()}

    def current(self, rng) -> dict:
        """The b = 1 chains with their summed-out layers drawn given them: every layer, as a Gibbs sweep leaves it."""
        g = self.gibbs
        self._start()
        state = {k: v[0].copy() for k, v in self.replicas.items()}
        for name in g.order:
            if name in g.c.marginalised:
                state[name] = g.samplers[name](g.c.params, state, rng)
        return state

    # ---- reporting and checkpoints ----
    def rates(self, since=None) -> np.ndarray:
        """Per neighbouring pair (1 and b_1 first), the fraction of exchanges accepted (since `since`'s counts)."""
        accepted, attempted = (self.accepted, self.attempted) if since is None else \
            (self.accepted - since[0], self.attempted - since[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(attempted > 0, accepted / np.maximum(attempted, 1), np.nan)

    def metrics(self) -> dict:
        """The epoch's exchange rates: swap_rate_t for the pair (t, t + 1) and swap_rate, their mean.

        A pair at which the epoch tried no exchange reports NaN (an epoch of
        one update, full batch, tries every other pair) and is left out of the mean.
        """
        rates = self.rates(self._mark)
        self._mark = (self.accepted.copy(), self.attempted.copy())
        tried = rates[np.isfinite(rates)]
        return {"swap_rate": float(tried.mean()) if len(tried) else float("nan"),
                **{f"swap_rate_{t}": float(rate) for t, rate in enumerate(rates)}}

    def state(self) -> dict:
        if self.replicas is None:
            return {}
        return {"beta": self.betas.copy(), "rounds": np.array(self.rounds, np.int64),
                "accepted": self.accepted.copy(), "attempted": self.attempted.copy(),
                **{f"chains/{k}": np.asarray(to_host(v)) for k, v in self.replicas.items()}}

    def restore(self, arrays: dict, path) -> None:
        """Load state(): the same ladder, a (T, chains) block per kept layer, counts that are counts."""
        from ..checkpoint_contents import fit_arrays

        if not arrays:
            return
        c, temperatures = self.gibbs.c, len(self.betas)

        def label(name: str) -> str:
            return f"sampler state 'train/sampler/{name}'"

        pairs = (temperatures - 1,)
        counts = {"beta": (len(arrays["beta"]),) if "beta" in arrays and arrays["beta"].ndim == 1 else (temperatures,),
                  "rounds": (), "accepted": pairs, "attempted": pairs}
        layers = {f"chains/{n}": (temperatures, self.count) + tuple(c.layers[n]["shape"]) for n in self.gibbs.kept}
        whose = "parallel tempering's state"
        numbers = fit_arrays(path, {k: v for k, v in arrays.items() if k in counts}, counts, np.float64, label,
                             whose, "it keeps", complete=True)
        chains = fit_arrays(path, {k: v for k, v in arrays.items() if k not in counts}, layers, c.dtype, label,
                            whose, "it keeps", complete=True)
        if len(numbers["beta"]) != temperatures or not np.array_equal(numbers["beta"], self.betas):
            raise DSLError(f"resume: temperatures were {numbers['beta'].tolist()} in {path}, now {self.betas.tolist()}")
        for name in ("rounds", "accepted", "attempted"):
            value = numbers[name]
            if not np.all((value >= 0) & (value == np.round(value)) & (value < 2**62)):
                raise DSLError(f"checkpoint {path}: {label(name)} must hold integers >= 0")
        if np.any(numbers["accepted"] > numbers["attempted"]):
            raise DSLError(f"checkpoint {path}: {label('accepted')} exceeds the exchanges attempted")
        self.rounds = int(numbers["rounds"])
        self.accepted, self.attempted = numbers["accepted"].astype(np.int64), numbers["attempted"].astype(np.int64)
        self._mark = (self.accepted.copy(), self.attempted.copy())
        self.replicas = {k.removeprefix("chains/"): c.xp.asarray(v, dtype=c.dtype) for k, v in chains.items()}
