"""Hybrid Monte Carlo for a jointly drawn quadratic layer: Ranzato and Hinton's sampler for the mcRBM's image.

Given its hidden units, an mcRBM's x is Gaussian with a full precision
I + R diag(hc) R^T: the exact draw (the generated sample_x) builds that
matrix and factors it, O(nv^2 nc + nv^3) per chain, which is what makes
image-sized models slow. Hybrid Monte Carlo needs only dE/dx at the current
x, the generated `gradient_x` (x - W hm + R (hc * R^T x): products with W and
R, O(nv (nm + nc)) per chain and leapfrog step), and the energy for its
Metropolis test. Each call runs `steps` leapfrog steps from fresh Gaussian
momenta and accepts or rejects each chain's end point, so the conditional
p(x | rest) at inverse temperature beta is left exactly invariant; it is one
transition of a Markov chain, not an independent draw.

The step size adapts towards an acceptance rate of `target` (Ranzato and
Hinton kept theirs near 90%): after every call it is multiplied by 1.02 when
more chains than the target were accepted, by 0.98 otherwise. That state is
explicit here (`step_size`, `acceptance`), so a trainer can report it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DSLError

DEFAULT_STEPS = 20
DEFAULT_STEP_SIZE = 0.05
DEFAULT_TARGET = 0.9
ADAPTATION = 1.02


@dataclass
class HMC:
    """Hybrid Monte Carlo transitions of `layer`, a jointly drawn quadratic layer of `compiled`."""

    compiled: object
    layer: str
    steps: int = DEFAULT_STEPS
    step_size: float = DEFAULT_STEP_SIZE
    target: float = DEFAULT_TARGET
    adapt: bool = True
    acceptance: float | None = None  # the last call's fraction of chains accepted

    def __post_init__(self):
        module = self.compiled.module
        if not hasattr(module, f"gradient_{self.layer}"):
            joint = [n for n, info in self.compiled.layers.items() if info["update"] == "joint"]
            raise DSLError(f"hybrid Monte Carlo draws jointly drawn real-valued layers; {self.layer} of "
                           f"{self.compiled.model.name} is not one (those: {', '.join(joint) or 'none'})")
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise DSLError(f"hmc: steps must be a positive integer, got {self.steps!r}")
        if not (isinstance(self.step_size, (int, float)) and self.step_size > 0 and np.isfinite(self.step_size)):
            raise DSLError(f"hmc: step_size must be a positive number, got {self.step_size!r}")
        if not (isinstance(self.target, (int, float)) and 0 < self.target < 1):
            raise DSLError(f"hmc: target must be an acceptance rate in (0, 1), got {self.target!r}")
        self._gradient = getattr(module, f"gradient_{self.layer}")
        self._energy = module.energy

    def __call__(self, params: dict, state: dict, rng, beta: float = 1.0) -> object:
        """The layer after one HMC transition from state[layer] given the rest, at inverse temperature beta (a new
        array; state is untouched). The signature is a generated sample_L's, so a Gibbs sweep can call either."""
        xp = self.compiled.xp
        start = state[self.layer]
        dtype = start.dtype
        beta = float(beta)
        current = dict(state)
        momentum = rng.standard_normal(start.shape, dtype=dtype)
        before = beta * self._energy(params, current) + 0.5 * _squares(momentum)
        step = xp.asarray(self.step_size, dtype=dtype)
        x = start
        force = beta * self._gradient(params, current)
        velocity = momentum - 0.5 * step * force
        for number in range(self.steps):
            x = x + step * velocity
            current[self.layer] = x
            force = beta * self._gradient(params, current)
            if number < self.steps - 1:
                velocity = velocity - step * force
        velocity = velocity - 0.5 * step * force
        after = beta * self._energy(params, current) + 0.5 * _squares(velocity)
        uniforms = rng.random(before.shape, dtype=dtype)
        accept = xp.log(uniforms) < before - after  # NaN (a diverged trajectory) compares False: rejected
        self.acceptance = float(xp.mean(accept))
        if self.adapt:
            self.step_size *= ADAPTATION if self.acceptance > self.target else 1 / ADAPTATION
        return xp.where(xp.reshape(accept, accept.shape + (1,) * (start.ndim - 1)), x, start)


SETTINGS = ("steps", "step_size", "target")  # what fit(hmc={...}) may set


def transitions(compiled, setting) -> dict:
    """{layer: HMC} for every jointly drawn quadratic layer, from fit's or sample's hmc= (True: the defaults, a dict:
    some of SETTINGS); {} for False. A model without such a layer is a DSLError: hmc= would change nothing."""
    if setting is False or setting is None:
        return {}
    joint = [n for n, info in compiled.layers.items() if info["update"] == "joint"]
    if not joint:
        raise DSLError(f"hmc: {compiled.model.name} has no jointly drawn real-valued layer (an mcRBM's x) for hybrid "
                       "Monte Carlo to draw; its layers are drawn exactly already")
    chosen = {} if setting is True else dict(setting)
    return {name: HMC(compiled, name, **chosen) for name in joint}


def _squares(values):
    """Each row's sum of squares (over every axis but the batch)."""
    return (values * values).reshape(len(values), -1).sum(axis=1)
