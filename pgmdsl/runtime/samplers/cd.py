"""CD-k (Hinton 2002): k block-Gibbs sweeps started at the data phase."""

from __future__ import annotations

from .base import NegativePhase


class ContrastiveDivergence(NegativePhase):
    """k sweeps from the minibatch; the first class of the first sweep is drawn from the data phase's means.

    No state between updates. runtime.fused's packed update makes the same draws.
    """

    packed = True

    def model_phase(self, positive: dict, rows: int, rng) -> dict:
        g = self.gibbs
        params = g.c.params
        g.fill_means(positive)
        state = g.kept_of(positive)
        for sweep in range(self.options.k):
            for name in g.order:
                if sweep == 0 and name in g.drawers and name in positive:
                    state[name] = g.drawers[name](positive[name], rng)
                else:
                    state[name] = g.samplers[name](params, state, rng)
        return g.fill_means(g.kept_of(state))
