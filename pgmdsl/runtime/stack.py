"""Deep belief networks: a stack of compiled models trained greedily, layer by layer.

Hinton, Osindero and Teh (2006): each model is trained on the hidden
conditional means of the one below; the top pair stays an undirected model
and the lower layers act as a directed generative path (top-down means).
"""

from __future__ import annotations

import numpy as np

from ..errors import DSLError


class CompiledStack:
    """The compiled models of a stack, bottom first."""

    def __init__(self, model, levels: list):
        self.model = model
        self.levels = levels

    def fit(self, data, levels: list[dict] | None = None, validation=None, **options) -> list:
        """Greedy layer-wise training (runtime.recipes.greedy); returns one History per level.

        options apply to every level; levels=[{...}, ...] overrides them per level (epochs, lr, ...).
        """
        from .recipes import greedy

        return greedy.stack(self.levels, data, greedy.per_level(len(self.levels), options, levels), validation)

    def transform(self, data):
        """Bottom-up conditional means through every level: the top layer's features."""
        for level in self.levels:
            data = np.asarray(level.transform(data))
        return data

    def sample(self, n: int, steps: int = 1000, seed: int = 0):
        """Gibbs chains in the top model, then one top-down pass of conditional means."""
        top = self.levels[-1]
        state = top.sample(n, steps=steps, seed=seed)
        visible = _single(top, "visible")
        below = state[visible]
        for level in reversed(self.levels[:-1]):
            hidden, visible = _single(level, "hidden"), _single(level, "visible")
            below = level.module_mean(visible, {hidden: level.xp.asarray(below, dtype=level.dtype)})
        return below

    def save(self, path):
        raise DSLError("saving a stack is not supported yet: save each level (stack.levels[k].save(path))")


def _single(compiled, role: str) -> str:
    names = [n for n, info in compiled.layers.items() if info["role"] == role]
    if len(names) != 1:
        raise DSLError(f"a stacked model needs one {role} layer; {compiled.model.name} has {len(names)}")
    return names[0]
