"""What every negative-phase sampler works with (`Gibbs`) and the interface it offers the trainer (`NegativePhase`)."""

from __future__ import annotations

from ...errors import DSLError
from ..initialize import check_rows
from ..sampling import sweep_order


class Gibbs:
    """A compiled model's block-Gibbs kernels, with some layers held fixed (clamped layers and inputs).

    order: the layers one sweep draws, the classes holding no observed layer
    first (runtime.sampling.sweep_order); first_class: the layers of that
    first class; means: (layer, mean_L) for the layers the compiler sums out;
    samplers and drawers: sample_L for the drawn layers, draw_L (units given
    their means) for the first class; kept: the layers a chain holds (the
    free energy's); latent: kept layers that are not observed (a DBM's h2).
    new_chains(count): `count` starting states of the kept layers (the
    trainer's start at random training rows; sampling's at random states).
    transitions: {layer: a callable with sample_L's signature} drawing those
    layers instead of their generated samplers (runtime.hmc.HMC: hybrid Monte
    Carlo for a jointly drawn Gaussian layer).
    """

    def __init__(self, compiled, clamp=(), new_chains=None, transitions=None):
        self.c = compiled
        self.clamp = tuple(clamp)
        self.inputs = tuple(n for n, info in compiled.layers.items() if info["role"] == "input")
        self.frozen = tuple(dict.fromkeys(self.clamp + self.inputs))
        self.order = sweep_order(compiled, self.frozen)
        self.first_class = next((set(step) for step in compiled.schedule if self.order and self.order[0] in step), set())
        module = compiled.module
        self.means = [(n, getattr(module, f"mean_{n}")) for n in compiled.marginalised]
        self.samplers = {n: getattr(module, f"sample_{n}") for n in self.order}
        self.transitions = dict(transitions or {})
        self.samplers.update({n: t for n, t in self.transitions.items() if n in self.samplers})
        self.drawers = {n: getattr(module, f"draw_{n}") for n in self.first_class if hasattr(module, f"draw_{n}")}
        self.kept = tuple(compiled.kept)
        observed = {n for n, info in compiled.layers.items() if info["role"] in ("visible", "input")}
        self.latent = [n for n in compiled.kept if n not in observed]
        self.new_chains = new_chains

    def fill_means(self, state: dict) -> dict:
        """The summed-out layers' conditional means, set in `state` (the statistics use them)."""
        params = self.c.params
        for name, mean in self.means:
            state[name] = mean(params, state)
        return state

    def sweep(self, state: dict, rng, beta: float = 1.0) -> dict:
        """One sweep in place: every drawn layer from its conditional at inverse temperature beta."""
        params = self.c.params
        if beta == 1.0:
            for name in self.order:
                state[name] = self.samplers[name](params, state, rng)
        else:
            for name in self.order:
                state[name] = self.samplers[name](params, state, rng, beta=beta)
        return state

    def kept_of(self, state: dict) -> dict:
        return {k: v for k, v in state.items() if k not in self.c.marginalised}


class NegativePhase:
    """A negative-phase sampler: its state, and the model-phase state of one minibatch at a time.

    Made as cls(gibbs, options): `gibbs` the model's kernels (Gibbs),
    `options` fit's TrainingOptions. The random generator comes with every
    call, so a run is reproducible from its seed and nothing here owns one.

    chains: the persistent chains in the form the trainer's checkpoint member
    `train/chains` holds (PCD's), or None. state() and restore(): any further
    state, as a dict of plain arrays saved as `train/sampler/NAME` and
    checked when loaded (a checkpoint is untrusted). metrics(): what the
    epoch's History row reports of the sampler (numbers only).
    """

    packed = False  # runtime.fused's packed update runs this method (CD and PCD do)
    standalone = False  # it samples without data: Compiled.sample(method=...)
    settings: tuple[str, ...] = ()  # fit options only this sampler reads (refused with other methods)

    def __init__(self, gibbs: Gibbs, options):
        self.gibbs, self.options = gibbs, options
        self.chains = None

    @classmethod
    def check_memory(cls, compiled, options, batch: int) -> None:
        """Refuse, before anything is allocated, states beyond the memory budget (runtime.initialize.check_rows)."""
        check_rows(compiled, 2 * batch, f"fit: a batch of {batch} rows of {compiled.model.name} and its negatives")

    def model_phase(self, positive: dict, rows: int, rng) -> dict:
        """The model phase for a minibatch whose data phase is `positive` (observed and kept latent layers).

        Sets the summed-out layers' conditional means in `positive` and in the
        returned state, whose rows are the model's samples (any count).
        """
        raise NotImplementedError

    def advance(self, rng) -> None:
        """Standalone samplers: one step of the chains with no data."""
        raise DSLError(f"method '{self.options.method}' starts from the data: it cannot sample without it")

    def current(self, rng) -> dict:
        """Standalone samplers: the chains' state, every non-pooled layer."""
        raise DSLError(f"method '{self.options.method}' starts from the data: it cannot sample without it")

    def state(self) -> dict:
        return {}

    def restore(self, arrays: dict, path) -> None:
        """Load what state() saved, refusing anything else."""
        if arrays:
            listed = ", ".join(f"'train/sampler/{name}'" for name in sorted(arrays))
            raise DSLError(f"checkpoint {path}: {listed} {'is' if len(arrays) == 1 else 'are'} no part of "
                           f"method '{self.options.method}''s state (it keeps none there)")

    def metrics(self) -> dict:
        return {}
