"""CD-k and PCD-k for packed bipartite models in a few array calls per update.

At the minibatch sizes people use for RBMs (10 to 100 rows) a training step
is bound by the number of array calls, not by arithmetic: each NumPy call
costs a microsecond or more whatever its size. This update works on the
packed matrix of `runtime.packing` (biases folded into the couplings, a
constant-1 unit on each side), stores half of it so that a sigmoid is
tanh(x)/2 + 1/2 with nothing to scale first, and writes into preallocated
buffers. One PCD-1 update, about 20 array calls:

    the chains' observed units            one product, an in-place sigmoid,
      from their kept hidden units        one uniform draw, one comparison
    hidden means of [data rows; chains]   one product, an in-place sigmoid
    data minus model statistics           one product over the stacked rows
                                          with signed, lr-folded row weights
    the chains' next hidden units         one uniform draw, one comparison

It makes the same draws from the same generator in the same order as the
generic trainer (`runtime.train.Trainer.update` with the cd and pcd samplers
of runtime.samplers, `persistent_hidden` for PCD), so the two agree to
rounding; the trainer uses it whenever the model packs and no option needs
the generic path (`fused_reason`; other samplers, such as pt, take the
generic update).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .packing import PackedLayout, packed_layout, why_not_packed


def fused_reason(compiled, options, clamp=()) -> str | None:
    """None when `FusedStep` can train this model with these options; otherwise why not."""
    from . import samplers

    if not options.fused:
        return "fused=False"
    if not samplers.get(options.method).packed:
        return f"{options.method}: the generic update"
    if options.objective != "generative":
        return f"the {options.objective} objective needs the generic trainer"
    if options.sparsity_target is not None:
        return "a sparsity target needs the generic trainer"
    if options.initial_momentum is not None:
        return "a momentum schedule needs the generic trainer"
    if isinstance(options.lr, dict):
        return "per-parameter learning rates need the generic trainer"
    if clamp:
        return "clamped layers need the generic trainer"
    return why_not_packed(compiled)


def _sigmoid_of_double(xp, x):
    """In place: sigmoid(2x) = 0.5*tanh(x)+0.5, the prelude's stable form of the sigmoid, given half the field."""
    xp.tanh(x, out=x)
    x *= 0.5
    x += 0.5


class FusedStep:
    """The packed parameters, momentum and persistent chains, and one update at a time.

    `load` packs the trainer's parameters (and momentum and chains) into P;
    `update` steps P; `store` writes them back. The trainer calls load and
    store around every epoch, so checkpoints, callbacks and metrics see
    ordinary parameter arrays.
    """

    def __init__(self, compiled, options, new_chains, rows: int | None = None):
        """rows: the training rows, when known: no minibatch buffer is larger than they are."""
        self.c, self.o, self.xp = compiled, options, compiled.xp
        self.layout: PackedLayout = packed_layout(compiled)
        self.new_chains = new_chains  # the trainer's: chains start where its generic path would start them
        xp, dtype = self.xp, compiled.dtype
        nv, nh = self.layout.n_observed, self.layout.n_hidden
        capacity = min(options.batch_size, rows) if rows else options.batch_size
        # PCD keeps as many chains as the generic trainer (batch_size by default, whatever the data's rows)
        chains = (options.chains or options.batch_size) if options.method == "pcd" else capacity
        self.capacity, self.chains = capacity, chains
        self.P = xp.zeros(self.layout.shape, dtype=dtype)  # half the packed matrix: rows @ P are half-fields
        self.velocity = xp.zeros_like(self.P) if options.momentum else None
        self.decay = self._decay_mask() if options.weight_decay else None
        self.unparameterised = self._empty_cells()  # e.g. no visible biases: that column must stay 0
        stacked = capacity + chains
        self.S = xp.ones((stacked, nv + 1), dtype=dtype)  # [data rows; chains (PCD) or negatives (CD)], then a 1
        self.H = xp.ones((stacked, nh + 1), dtype=dtype)  # their hidden means, then a 1
        self.scaled = xp.empty_like(self.S)
        self.G = xp.ones((chains, nh + 1), dtype=dtype)  # drawn hidden units, then a 1
        self.V = xp.empty((chains, nv + 1), dtype=dtype)  # observed means given G
        self.started = False  # PCD: whether G holds the chains' hidden units
        self.rng = None
        self._weights_key, self._weights = None, None
        self._views: dict = {}
        self.dtype = np.dtype(compiled.dtype)

    # ---- between the trainer's arrays and the packed ones ----
    def load(self, params: dict, velocity: dict, chains: dict | None) -> None:
        self._pack(self.P, params)
        if self.velocity is not None:
            self._pack(self.velocity, velocity)
        if self.o.method == "pcd" and chains is not None:
            self._set_chains(chains)

    def store(self, params: dict, velocity: dict) -> dict | None:
        """Write P (and momentum) back into the trainer's arrays; returns the chains (PCD) as a dict."""
        self._unpack(self.P, params)
        if self.velocity is not None:
            self._unpack(self.velocity, velocity)
        if self.o.method != "pcd" or not self.started:
            return None
        return {s.layer: self.G[:, s.start:s.stop].reshape((self.chains,) + s.shape).copy() for s in self.layout.hidden}

    def _pack(self, target, arrays: dict) -> None:
        for block in self.layout.blocks:
            value = arrays[block.param]
            value = value.reshape(block.rows.stop - block.rows.start, -1) if not block.transposed else \
                value.reshape(block.cols.stop - block.cols.start, -1).T
            target[block.rows, block.cols] = (-0.5 * block.sign) * value

    def _unpack(self, source, arrays: dict) -> None:
        for block in self.layout.blocks:
            value = (-2 * block.sign) * source[block.rows, block.cols]
            target = arrays[block.param]
            target[...] = (value.T if block.transposed else value).reshape(target.shape)

    def _empty_cells(self):
        """None when parameters fill P (but for the unused corner); else 1 where they do and 0 elsewhere."""
        mask = self.xp.zeros(self.layout.shape, dtype=self.c.dtype)
        for block in self.layout.blocks:
            mask[block.rows, block.cols] = 1
        mask[-1, -1] = 1  # the corner never reaches a field: the constant columns are reset or unused
        return None if bool(mask.all()) else mask

    def _decay_mask(self):
        """1 where a parameter with two or more axes lives (weight decay's reach, as in the generic trainer)."""
        mask = self.xp.zeros(self.layout.shape, dtype=self.c.dtype)
        for param in self.c.model.params:
            if len(param.shape) >= 2:
                block = next(b for b in self.layout.blocks if b.param == param.name)
                mask[block.rows, block.cols] = 1
        return mask

    def _set_chains(self, chains: dict) -> None:
        """PCD's chains keep their hidden units (as the generic trainer's `persistent_hidden`)."""
        if {s.layer for s in self.layout.hidden} != set(chains):
            return  # chains of another form (an older checkpoint): start afresh
        for s in self.layout.hidden:
            self.G[:, s.start:s.stop] = chains[s.layer].reshape(self.chains, -1)
        self.started = True

    def _start_chains(self, v) -> None:
        """Hidden units drawn given random training rows, as the generic trainer starts them."""
        start = self.new_chains(self.chains)
        for s in self.layout.observed:
            v.model[:, s.start:s.stop] = start[s.layer].reshape(self.chains, -1)
        self._hidden_means(v.model, v.model_means)
        self._draw(v.hidden_draws)
        self.started = True

    # ---- one update ----
    def update(self, batch, lr: float, rng) -> None:
        """theta += lr (data - model statistics) for `batch`, a (rows, observed units) array."""
        xp, P = self.xp, self.P
        v = self._views.get(len(batch)) or self._plan(len(batch))
        self.rng = rng
        v.data[...] = batch
        if v.pcd:
            if not self.started:
                self._start_chains(v)
            for sweep in range(self.o.k):  # from the chains' hidden units
                if sweep:
                    self._hidden_means(v.model, v.model_means)
                    self._draw(v.hidden_draws)
                self._observed_draw(v)
            self._hidden_means(v.S, v.H)  # data rows and chains in one product
        else:
            self._hidden_means(v.data_rows, v.data_means)
            for sweep in range(self.o.k):  # from the data
                if sweep:
                    self._hidden_means(v.model, v.model_means)
                self._draw(v.hidden_draws if sweep else v.first_hidden_draws)
                self._observed_draw(v)
            self._hidden_means(v.model, v.model_means)
        v.ones[...] = 1
        xp.multiply(v.S, self._row_weights(len(batch), len(v.model), lr), out=v.scaled)
        step = v.scaled.T @ v.H
        if self.unparameterised is not None:
            step *= self.unparameterised
        if self.decay is not None:
            step -= (lr * self.o.weight_decay) * (self.decay * P)
        if self.velocity is not None:
            self.velocity *= self.o.momentum
            self.velocity += step
            step = self.velocity
        P += step
        if v.pcd:  # the chains' next hidden units, from the means their statistics used
            self._draw(v.hidden_draws)

    def _hidden_means(self, rows, out) -> None:
        self.xp.dot(rows, self.P, out=out)
        self._means(out, self.layout.hidden)

    def _observed_draw(self, v) -> None:
        self.xp.dot(v.G, self.P.T, out=v.V)
        self._means(v.V, self.layout.observed)
        self._draw(v.observed_draws)

    def _means(self, halves, segments) -> None:
        """In place: each layer's conditional means from half its field (the unit types' MEAN of codegen.emit)."""
        xp = self.xp
        kinds = {s.kind for s in segments}
        if kinds == {"bernoulli"}:  # one call sequence over the whole (contiguous) buffer, its constant column too
            _sigmoid_of_double(xp, halves)
            return
        if kinds == {"sign"}:
            halves *= 2
            xp.tanh(halves, out=halves)
            return
        for s in segments:
            x = halves[:, s.start:s.stop]
            if s.kind == "bernoulli":
                _sigmoid_of_double(xp, x)
            elif s.kind == "sign":  # tanh(field)
                x *= 2
                xp.tanh(x, out=x)
            else:  # categorical: softmax over the layer's last axis, as the prelude's softmax
                field = (2 * x).reshape((len(x),) + s.shape)
                e = xp.exp(field - xp.max(field, axis=-1, keepdims=True))
                x[...] = (e / xp.sum(e, axis=-1, keepdims=True)).reshape(len(x), -1)

    def _draw(self, draws) -> None:
        """Units drawn given their means, a layer at a time, as the generic samplers (the prelude's) draw them."""
        xp, rng, dtype = self.xp, self.rng, self.dtype
        for out, means, s in draws:
            if s.kind == "bernoulli":
                xp.less(rng.random(out.shape, dtype=dtype), means, out=out)
            elif s.kind == "sign":  # +1 with probability (1 + mean) / 2
                xp.less(rng.random(out.shape, dtype=dtype), (means + 1) / 2, out=out)
                out *= 2
                out -= 1
            else:  # categorical: the first category whose cumulative probability passes a uniform
                p = means.reshape((len(means),) + s.shape)
                u = rng.random(p.shape[:-1] + (1,), dtype=dtype)
                chosen = xp.minimum(xp.sum(xp.cumsum(p, axis=-1) < u, axis=-1), p.shape[-1] - 1)
                out[...] = (xp.arange(p.shape[-1]) == chosen[..., None]).reshape(len(out), -1)

    def _plan(self, rows: int) -> SimpleNamespace:
        """The buffer views one update with `rows` data rows works on (made once per row count)."""
        pcd = self.o.method == "pcd"
        negatives = self.chains if pcd else rows
        first = self.capacity - rows
        S, H = self.S[first:self.capacity + negatives], self.H[first:self.capacity + negatives]
        nv, nh = self.layout.n_observed, self.layout.n_hidden
        G, V = self.G[:negatives], self.V[:negatives]
        model, model_means, data_means = S[rows:], H[rows:], H[:rows]

        def draws(out, means, segments):
            return tuple((out[:, s.start:s.stop], means[:, s.start:s.stop], s) for s in segments)

        views = SimpleNamespace(
            pcd=pcd, S=S, H=H, data=S[:rows, :nv], data_rows=S[:rows], data_means=data_means,
            model=model, model_means=model_means, G=G, V=V, ones=H[:, nh], scaled=self.scaled[:len(S)],
            hidden_draws=draws(G, model_means, self.layout.hidden),
            first_hidden_draws=draws(G, data_means, self.layout.hidden),  # CD's first sweep starts at the data
            observed_draws=draws(model, V, self.layout.observed),
        )
        self._views[rows] = views
        return views

    def _row_weights(self, rows: int, negatives: int, lr: float):
        """lr/rows for data rows, -lr/negatives for model rows, as a column, halved as P is."""
        key = (rows, negatives, lr)
        if self._weights_key != key:
            xp, dtype = self.xp, self.c.dtype
            weights = xp.concatenate((xp.full(rows, 0.5 * lr / rows, dtype=dtype),
                                      xp.full(negatives, -0.5 * lr / negatives, dtype=dtype)))
            self._weights_key, self._weights = key, weights[:, None]
        return self._weights
