"""Deep belief networks: a stack of compiled models trained greedily, layer by layer.

Hinton, Osindero and Teh (2006): each model is trained on the hidden
conditional means of the one below; the top pair stays an undirected model
and the lower layers act as a directed generative path (top-down means).

Each level below the top has two parameter sets over the same compiled
model: its generative parameters (`level.params`: p(below | above), the
directed path) and its recognition parameters (`recognition[k]`: q(above |
below), the up pass). Greedy training leaves them tied (recognition[k] is
None and the up pass reads level.params); the up-down fine-tuning unties
them, as the paper does. Both evaluate the same generated conditionals.
"""

from __future__ import annotations

import numpy as np

from ..errors import DSLError
from .pools import detectors_given_pools, pooling_layers, with_pools

# Gibbs sweeps of a pooled level's visible and detector layers given its pooling units, in the top-down pass
DOWN_STEPS = 20


class CompiledStack:
    """The compiled models of a stack, bottom first."""

    def __init__(self, model, levels: list):
        self.model = model
        self.levels = levels
        self.recognition: list[dict | None] = [None] * len(levels)  # untied up-pass parameters per level
        self.standardization = None  # a stack trains on its rows as given (binary units): nothing to undo

    @property
    def xp(self):
        """The array module of the levels (numpy, or cupy on the GPU)."""
        return self.levels[0].xp

    @property
    def dtype(self):
        """The levels' dtype."""
        return self.levels[0].dtype

    @property
    def backend(self) -> str:
        """The levels' backend (numpy or cupy)."""
        return self.levels[0].backend

    @property
    def pooled(self) -> bool:
        """Whether a level hands up a pooling layer (a convolutional DBN)."""
        return any(meeting(level) != single(level, "hidden") for level in self.levels)

    def fit(self, data, levels: list[dict] | None = None, validation=None, **options) -> list:
        """Greedy layer-wise training (runtime.recipes.greedy); returns one History per level.

        options apply to every level; levels=[{...}, ...] overrides them per level (epochs, lr, ...).
        Training the levels again ties their recognition parameters to the new generative ones.
        """
        from .recipes import greedy

        self.recognition = [None] * len(self.levels)
        return greedy.stack(self.levels, data, greedy.per_level(len(self.levels), options, levels), validation)

    def fine_tune(self, data, **options) -> list[dict]:
        """Generative fine-tuning by the up-down algorithm (runtime.recipes.updown.fine_tune, its options); unties
        the recognition parameters. Returns one metrics dict per epoch."""
        from .recipes import updown

        return updown.fine_tune(self, data, **options)

    def up(self, number: int, below):
        """q(above | below) of level `number`: its hidden means given its visible rows (recognition parameters);
        for a pooled level, its pooling units' means (the layer the next level stands on)."""
        level = self.levels[number]
        params = self.recognition[number] or level.params
        visible, hidden = single(level, "visible"), single(level, "hidden")
        means = getattr(level.module, f"mean_{hidden}")(params, {visible: level.xp.asarray(below, dtype=level.dtype)})
        return with_pools(level, {hidden: means}).get(meeting(level), means)

    def down(self, number: int, above, rng=None, steps: int = DOWN_STEPS):
        """p(below | above) of level `number`: its visible means given its hidden rows (generative parameters).

        A pooled level is given its pooling units (probabilities are drawn first): its visible layer and
        detectors are then drawn from the level's conditional given them, by `steps` Gibbs sweeps of h | v, p and
        v | h, and the visible means given the last h are returned.
        """
        level = self.levels[number]
        visible, hidden = single(level, "visible"), single(level, "hidden")
        above = level.xp.asarray(above, dtype=level.dtype)
        if meeting(level) == hidden:
            return level.module_mean(visible, {hidden: above})
        rng = level.random(0) if rng is None else rng
        pooled = level.module.bernoulli(above, rng)
        state = {visible: level.xp.zeros((len(above),) + tuple(level.layers[visible]["shape"]), dtype=level.dtype)}
        for _ in range(steps):
            state[hidden] = detectors_given_pools(level, state, pooled, rng)
            state[visible] = level.module_sample(visible, state, rng)
        return level.module_mean(visible, {hidden: state[hidden]})

    def transform(self, data):
        """Bottom-up recognition means through every level: the top layer's features."""
        for number in range(len(self.levels)):
            data = self.up(number, data)
        return np.asarray(data.get() if hasattr(data, "get") else data)

    def sample(self, n: int, steps: int = 1000, seed: int = 0):
        """Gibbs chains in the top model, then one top-down pass of conditional means (through pooled levels by
        their conditionals given the pooling units: `down`)."""
        top = self.levels[-1]
        state = top.sample(n, steps=steps, seed=seed)
        below = state[single(top, "visible")]
        rng = top.random(seed + 1)
        for number in reversed(range(len(self.levels) - 1)):
            below = self.down(number, below, rng)
        return below



    def save(self, path):
        """Every level's parameters and recognition parameters, with the stack's .dgm files, in one .npz."""
        from .checkpoint import save

        return save(path, self)

    def __repr__(self) -> str:
        return f"<CompiledStack {self.model.name}: {len(self.levels)} levels, backend={self.backend} dtype={self.dtype}>"


def meeting(compiled) -> str:
    """The layer a level hands up: its hidden layer, or that layer's pooling layer (ir.stack.meeting_layer)."""
    hidden = single(compiled, "hidden")
    return next((name for name, (detector, _) in pooling_layers(compiled).items() if detector == hidden), hidden)


def single(compiled, role: str) -> str:
    """The one layer of `compiled` with `role` ("visible" or "hidden"): a stack's levels meet through them."""
    names = [n for n, info in compiled.layers.items() if info["role"] == role]
    if len(names) != 1:
        raise DSLError(f"a stacked model needs one {role} layer; {compiled.model.name} has {len(names)}")
    return names[0]
