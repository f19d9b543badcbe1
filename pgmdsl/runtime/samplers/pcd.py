"""PCD-k (Tieleman 2008): k block-Gibbs sweeps of persistent chains, carried from update to update."""

from __future__ import annotations

from ..initialize import check_rows
from .base import NegativePhase


class PersistentContrastiveDivergence(NegativePhase):
    """options.chains (default batch_size) persistent chains; inputs and clamped layers follow the batch.

    chains: the kept layers of every chain, or, where the first class of a
    sweep (the hidden units) is summed out and no layer is latent or clamped,
    those hidden units instead (`persistent_hidden`, as BernoulliRBM keeps
    h_samples_). runtime.fused's packed update makes the same draws.
    """

    packed = True

    def __init__(self, gibbs, options):
        super().__init__(gibbs, options)
        g = gibbs
        # a layer swept unit by unit reads its own current values, so chains that keep only the hidden units
        # cannot draw it: those keep every kept layer
        own = any(info["update"] == "unitwise" for name, info in g.c.layers.items() if name not in g.first_class)
        # (not with transitions such as hybrid Monte Carlo's: those move a layer from its current value, which
        # chains keeping only their hidden units would not have)
        self.stacked = bool(not g.latent and not g.clamp and g.first_class and not own and not g.transitions
                            and g.first_class <= set(g.c.marginalised) and g.first_class <= set(g.drawers))

    @classmethod
    def check_memory(cls, compiled, options, batch: int) -> None:
        chains = options.chains or options.batch_size
        given = "" if options.chains else " (batch_size's; chains= sets them apart)"
        check_rows(compiled, batch + chains, f"fit: {chains} persistent chains{given} and a batch of {batch} rows "
                                             f"of {compiled.model.name}")

    def model_phase(self, positive: dict, rows: int, rng) -> dict:
        if self.stacked:
            return self.persistent_hidden(positive, rows, rng)
        g = self.gibbs
        params = g.c.params
        g.fill_means(positive)
        state = self._chains(positive, rows, rng)
        for _ in range(self.options.k):
            for name in g.order:
                state[name] = g.samplers[name](params, state, rng)
        state = g.kept_of(state)
        self.chains = dict(state)
        return g.fill_means(state)

    def persistent_hidden(self, positive: dict, rows: int, rng) -> dict:
        """PCD-k as BernoulliRBM runs it, for chains whose first class (the hidden units) is summed out.

        The chains keep their hidden units. An update draws the observed
        units from them (then k - 1 more sweeps), gives the data rows and the
        chains their hidden means in one pass (the positive and negative
        statistics), and draws the chains' next hidden units from those
        means: one full sweep per update, and one product fewer than
        drawing the hidden units from fresh means first. Sets the data rows'
        means in `positive`; returns the model rows with theirs.
        """
        g = self.gibbs
        c, params, xp = g.c, g.c.params, g.c.xp
        hidden = [n for n in g.order if n in g.first_class]
        state = self._chains(positive, rows, rng, hidden)
        for sweep in range(self.options.k):
            for name in g.order:
                if not (sweep == 0 and name in g.first_class):
                    state[name] = g.samplers[name](params, state, rng)
        negative = {k: v for k, v in state.items() if k not in c.marginalised}
        both = {k: xp.concatenate((v, negative[k])) for k, v in positive.items()}
        for name, mean in g.means:
            value = mean(params, both)
            positive[name], negative[name] = value[:rows], value[rows:]
        self.chains = {**{k: v for k, v in self.chains.items() if k not in hidden},
                       **{n: g.drawers[n](negative[n], rng) for n in hidden}}
        return negative

    def _chains(self, positive: dict, rows: int, rng, hidden=None) -> dict:
        """The persistent chains, made on first use; inputs and clamped layers follow the batch.

        hidden: the layers `persistent_hidden` keeps in the chains instead of
        the observed ones, drawn given random training rows at the start.
        """
        g = self.gibbs
        count = self.options.chains or self.options.batch_size
        wanted = set(hidden) | set(g.frozen) if hidden else None
        if self.chains is None or len(next(iter(self.chains.values()))) != count or \
                (wanted is not None and set(self.chains) != wanted):
            self.chains = g.new_chains(count)
            if hidden:
                start = self.chains
                self.chains = {k: v for k, v in start.items() if k in g.frozen}
                for name, mean in g.means:
                    if name in hidden:
                        self.chains[name] = g.drawers[name](mean(g.c.params, start), rng)
        state = dict(self.chains)
        for name in g.frozen:
            if len(positive[name]) == count:
                state[name] = positive[name]
        return state
