"""The exact gradient of log p(label | rest): discriminative and hybrid training (Larochelle and Bengio 2008).

For a model whose label layer y is discrete and visible and whose latent
layers are all summed out, p(y | x) = exp(-F(x, y)) / sum over y' of
exp(-F(x, y')), and

    d log p(y | x) / d theta = S(x, y) - sum over y' of p(y' | x) S(x, y'),

S(x, y) = -dF/dtheta = the expected statistics given (x, y). Enumerating y'
makes it exact: no sampling, no chains. The generated `statistics` give S
with the summed-out layers at their conditional means, which is exact for
the terms that are linear in them (biases and couplings, as in every
standard-library model that sums its hidden layer out); the generative
phases use the same. One call covers a minibatch: the data rows with weight
lr/rows, then every (row, y') with weight -lr p(y' | x)/rows.

`objective="hybrid"` adds the generative (CD/PCD) step scaled by
`generative_weight`, Larochelle and Bengio's hybrid criterion.
"""

from __future__ import annotations

from ..errors import DSLError
from .labels import label_states



class LabelGradient:
    """Steps along the gradient of the mean log p(`layer` | the other observed layers) of a minibatch."""

    def __init__(self, compiled, layer: str):
        self.c, self.layer = compiled, layer
        self.states = compiled.xp.asarray(label_states(compiled, layer), dtype=compiled.dtype)
        module = compiled.module
        self.means = [(n, getattr(module, f"mean_{n}")) for n in compiled.marginalised]

    def steps(self, batch: dict, lr: float) -> tuple[dict, dict]:
        """(lr times the gradient of the batch's mean log p(label | rest), the data rows with their hidden means).

        Every row is paired with every label state; the data rows are among those pairs, so one statistics
        pass with weights lr (1[y' = y] - p(y' | x)) / rows covers both terms of the gradient.
        """
        c, xp, params = self.c, self.c.xp, self.c.params
        rows, count = len(batch[self.layer]), len(self.states)
        every = {k: xp.repeat(v, count, axis=0) for k, v in batch.items() if k != self.layer}
        every[self.layer] = xp.tile(self.states, (rows,) + (1,) * (self.states.ndim - 1))
        log_p = -c.module.free_energy(params, every).reshape(rows, count)
        log_p = log_p - xp.max(log_p, axis=1, keepdims=True)
        p = xp.exp(log_p)
        p /= xp.sum(p, axis=1, keepdims=True)
        given = self._state_index(batch[self.layer])
        indicator = (xp.arange(count)[None, :] == given[:, None]).astype(c.dtype)
        for name, mean in self.means:
            every[name] = mean(params, every)
        weights = ((lr / rows) * (indicator - p)).reshape(-1).astype(c.dtype, copy=False)
        pick = xp.arange(rows) * count + given  # the data rows among the pairs
        data = {**batch, **{name: every[name][pick] for name, _ in self.means}}
        return c.module.statistics(params, every, weights), data

    def _state_index(self, labels):
        """Which of the label layer's states each row's label is (a DSLError for a value that is none)."""
        xp = self.c.xp
        flat = labels.reshape(len(labels), -1)
        match = xp.all(flat[:, None, :] == self.states.reshape(len(self.states), -1)[None], axis=2)
        if not bool(xp.all(xp.any(match, axis=1))):
            raise DSLError(f"fit: a row of layer '{self.layer}' is not one of its states (one-hot, 0/1 or -1/+1)")
        return xp.argmax(match, axis=1)
