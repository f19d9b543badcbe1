"""Compiled: a model's generated module with its parameters, behind a small API.

States are dicts from layer name to an array with the batch axis first.
The runtime never sees sympy: only the generated module's functions.
"""

from __future__ import annotations

import numpy as np

from ..errors import DSLError
from .initialize import constrain, initial_value


class Compiled:
    """A compiled model: `params`, `source`, and energy, free energy, conditionals and gradients."""

    def __init__(self, model, module, source: str, backend: str, dtype: str, seed: int = 0):
        self.model = model
        self.module = module
        self.source = source
        self.backend = backend
        self.dtype = np.dtype(dtype)
        self.xp = module.xp
        rng = np.random.default_rng(seed)
        self.params = {p.name: self.xp.asarray(initial_value(p, rng, self.dtype)) for p in model.params}

    # ---- structure ----
    @property
    def layers(self) -> dict:
        return self.module.LAYERS

    @property
    def kept(self) -> tuple[str, ...]:
        """Layers free_energy takes; the others (`marginalised`) are summed out analytically."""
        return self.module.KEPT

    @property
    def marginalised(self) -> tuple[str, ...]:
        return self.module.MARGINALISED

    @property
    def schedule(self) -> tuple[tuple[str, ...], ...]:
        return self.module.SCHEDULE

    @property
    def sampled(self) -> tuple[str, ...]:
        return tuple(name for step in self.schedule for name in step)

    # ---- states ----
    def _state(self, state: dict, needed) -> dict:
        converted = {}
        for name, value in state.items():
            if name not in self.layers:
                raise DSLError(f"model {self.model.name} has no layer '{name}' (layers: {', '.join(self.layers)})")
            array = self.xp.asarray(value, dtype=self.dtype)
            if array.ndim == len(self.layers[name]["shape"]):
                array = array[None]
            if tuple(array.shape[1:]) != tuple(self.layers[name]["shape"]):
                raise DSLError(
                    f"layer '{name}' has shape {self.layers[name]['shape']} per row, got an array of shape {tuple(array.shape)}"
                )
            converted[name] = array
        missing = [n for n in needed if n not in converted]
        if missing:
            raise DSLError(f"the state lacks layer{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        return converted

    def _layer(self, layer: str) -> None:
        if layer not in self.sampled:
            raise DSLError(f"'{layer}' is not a sampled layer of {self.model.name} (sampled: {', '.join(self.sampled)})")

    # ---- the kernels ----
    def energy(self, state: dict):
        """E(state), one value per batch row; every non-pooled layer must be given."""
        needed = [n for n, info in self.layers.items() if info["role"] != "pooled"]
        return self.module.energy(self.params, self._state(state, needed))

    def free_energy(self, state: dict):
        """F over the `kept` layers: -log of exp(-E) summed over the `marginalised` layers."""
        return self.module.free_energy(self.params, self._state(state, self.kept))

    def mean(self, layer: str, state: dict):
        """E[layer | the other layers]: conditional probabilities or means."""
        self._layer(layer)
        return getattr(self.module, f"mean_{layer}")(self.params, self._state(state, self._others(layer)))

    def sample_layer(self, layer: str, state: dict, rng):
        """A draw of `layer` from its conditional given the others (a sweep for coupled units)."""
        self._layer(layer)
        return getattr(self.module, f"sample_{layer}")(self.params, self._state(state, self._others(layer)), rng)

    def _others(self, layer: str) -> list[str]:
        needed = [n for n, info in self.layers.items() if info["role"] != "pooled" and n != layer]
        if self.layers[layer]["update"] == "unitwise":
            needed.append(layer)
        return needed

    def statistics(self, state: dict, weights=None) -> dict:
        """Weighted batch sums of -dE/dtheta, with summed-out layers at their conditional means."""
        state = self._state(state, self.kept)
        for name in self.marginalised:
            if name not in state:
                state[name] = getattr(self.module, f"mean_{name}")(self.params, state)
        missing = [n for n, info in self.layers.items() if info["role"] != "pooled" and n not in state]
        if missing:
            raise DSLError(f"the state lacks layer{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        rows = len(next(iter(state.values())))
        if weights is None:
            weights = self.xp.full(rows, 1.0 / rows, dtype=self.dtype)
        else:
            weights = self.xp.asarray(weights, dtype=self.dtype)
            weights = weights / weights.sum()
        return self.module.statistics(self.params, state, weights)

    def gradient(self, data_state: dict, model_state: dict, data_weights=None, model_weights=None) -> dict:
        """d log-likelihood / d theta: data statistics minus model statistics (weighted means).

        Layers missing from a state that the model sums out are replaced by their
        conditional means; constraints (symmetric, zero_diagonal) shape the result.
        """
        data = self.statistics(data_state, data_weights)
        model = self.statistics(model_state, model_weights)
        gradient = {}
        for param in self.model.params:
            difference = self.xp.asarray(data[param.name] - model[param.name], dtype=self.dtype)
            gradient[param.name] = constrain(param, self.xp.broadcast_to(difference, param.shape), self.xp)
        return gradient

    def __repr__(self) -> str:
        return f"<Compiled {self.model.name} backend={self.backend} dtype={self.dtype}>"
