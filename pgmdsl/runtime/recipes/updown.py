"""Generative fine-tuning of a deep belief network by the up-down algorithm (Hinton, Osindero and Teh 2006).

The contrastive wake-sleep algorithm of the paper's section 5 and appendix B.
Greedy stacking leaves every lower level's recognition parameters (the up
pass, q(above | below)) tied to its generative ones (p(below | above)); the
up-down algorithm unties them and, for each minibatch:

1. wake: a stochastic up pass with the recognition parameters gives a sampled
   state of every layer; each lower level's generative parameters follow the
   gradient of log p(below | above) at those states (the delta rule);
2. the top level, an undirected model, takes a CD-k step with its visible layer
   clamped to the wake pass's sample (the chain starts there, not at
   equilibrium: the paper's "contrastive" form of the top-level sleep phase);
3. sleep: a stochastic down pass with the generative parameters from the top
   chain's visible sample; each lower level's recognition parameters follow
   the gradient of log q(above | below) at those states.

Every update is computed from the parameters the minibatch started with, as in
the paper's code. The gradients are written over the generated conditionals
and statistics, never over parameter names: for a level whose energy is
linear in the units being predicted, d log p(x | h) / d theta =
s(x, h) - E_{x' ~ p(x' | h)} s(x', h) = s(x, h) - s(E[x | h], h), with s the
statistics (-dE/dtheta) of the generated module; the expectation of a linear
statistic is the statistic of the mean. For binary units this is the paper's
delta rule, h (x - p). Units with a quadratic energy (Gaussian, ReLU) break the
linearity (s holds x^2), so they are refused rather than trained wrongly.

Defaults and their sources (section 6.1 of the paper, MNIST): minibatches of
100 (ten of each class), 300 epochs, and 3, 6 then 10 Gibbs sweeps in the top
level over the first, second and last 100 epochs ("each time the number of
iterations of Gibbs sampling was raised, the error on the validation set
decreased noticeably"): k=(3, 6, 10) splits the epochs into thirds. The paper
states no learning rate (it chose rate, momentum and weight decay on a
validation set), so DEFAULT_LR is this module's: on 3x3 bars and stripes every
rate tried from 0.003 to 0.1 raised the exact log-likelihood (0.1 the most in
100 epochs); 0.01, a fifth of the greedy recipe's 0.05, is the cautious end,
for fine-tuning a model that is already good. Momentum and decay are left out. The last visible layer of the
down pass is its conditional means (the paper's sleepvisprobs), and the top
level's hidden statistics are taken at their conditional means given the
visible sample: the same expectation as the paper's sampled states, with
less noise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ... import units
from ...errors import DSLError
from ..gpu import to_host
from ..initialize import constrain
from ..stack import single
from ..train import as_data

DEFAULT_LR = 0.01
DEFAULT_K = (3, 6, 10)


def generative_delta(level, params: dict, below, above, weights) -> dict:
    """sum over rows of weight * d log p(below | above) / d params: s(below, above) - s(E[below | above], above)."""
    visible, hidden = single(level, "visible"), single(level, "hidden")
    predicted = getattr(level.module, f"mean_{visible}")(params, {hidden: above})
    return _contrast(level, params, {visible: below, hidden: above}, {visible: predicted, hidden: above}, weights)


def recognition_delta(level, params: dict, below, above, weights) -> dict:
    """sum over rows of weight * d log q(above | below) / d params: s(below, above) - s(below, E[above | below])."""
    visible, hidden = single(level, "visible"), single(level, "hidden")
    predicted = getattr(level.module, f"mean_{hidden}")(params, {visible: below})
    return _contrast(level, params, {visible: below, hidden: above}, {visible: below, hidden: predicted}, weights)


def _contrast(level, params: dict, observed: dict, expected: dict, weights) -> dict:
    """sum over rows of weight * (s(observed) - s(expected)), in one statistics call over both sets of rows."""
    xp = level.xp
    state = {name: xp.concatenate((observed[name], expected[name])) for name in observed}
    return level.module.statistics(params, state, xp.concatenate((weights, -weights)))


class UpDown:
    """The up-down algorithm's state over a CompiledStack: its untied recognition parameters, rate and generator.

    Creating it unties the stack: each lower level whose recognition parameters
    are still tied (None) gets a copy of its generative ones, so the up and
    down passes are unchanged until the first step. Levels already untied (an
    earlier fine-tuning) keep theirs; stack.fit ties them again.
    """

    def __init__(self, stack, lr: float, rng):
        check(stack)
        if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
            raise DSLError(f"up-down: lr must be a positive number, got {lr!r}")
        self.stack, self.lr, self.rng = stack, float(lr), rng
        for number, level in enumerate(stack.levels[:-1]):
            if stack.recognition[number] is None:
                stack.recognition[number] = {name: level.xp.array(value, copy=True) for name, value in level.params.items()}

    def step(self, rows, k: int) -> None:
        """One up-down update on a minibatch `rows` of the bottom level's visible layer (a backend array)."""
        stack, rng = self.stack, self.rng
        levels, top = stack.levels[:-1], stack.levels[-1]
        weights = top.xp.full(len(rows), self.lr / len(rows), dtype=top.dtype)  # the statistics are weighted sums
        wake = [rows]  # a sampled state of every layer, bottom first
        for number, level in enumerate(levels):
            hidden = single(level, "hidden")
            wake.append(getattr(level.module, f"sample_{hidden}")(stack.recognition[number],
                                                                  {single(level, "visible"): wake[-1]}, rng))
        steps = [generative_delta(level, level.params, wake[n], wake[n + 1], weights) for n, level in enumerate(levels)]
        visible, hidden = single(top, "visible"), single(top, "hidden")
        chain = wake[-1]
        for _ in range(k):
            state = getattr(top.module, f"sample_{hidden}")(top.params, {visible: chain}, rng)
            chain = getattr(top.module, f"sample_{visible}")(top.params, {hidden: state}, rng)
        both = top.xp.concatenate((wake[-1], chain))
        means = getattr(top.module, f"mean_{hidden}")(top.params, {visible: both})
        top_step = top.module.statistics(top.params, {visible: both, hidden: means},
                                         top.xp.concatenate((weights, -weights)))
        sleep = [chain]  # top down; the bottom layer as its conditional means, the paper's sleepvisprobs
        for number in reversed(range(len(levels))):
            level = levels[number]
            below, given = single(level, "visible"), {single(level, "hidden"): sleep[-1]}
            sleep.append(getattr(level.module, f"mean_{below}")(level.params, given) if number == 0
                         else getattr(level.module, f"sample_{below}")(level.params, given, rng))
        sleep.reverse()
        recognition = [recognition_delta(level, stack.recognition[n], sleep[n], sleep[n + 1], weights)
                       for n, level in enumerate(levels)]
        for number, level in enumerate(levels):
            apply(level, level.params, steps[number])
            apply(level, stack.recognition[number], recognition[number])
        apply(top, top.params, top_step)


def fine_tune(stack, data, epochs: int = 300, lr: float = DEFAULT_LR, k: int | Sequence[int] = DEFAULT_K,
              batch_size: int = 100, seed: int = 0) -> list[dict]:
    """Fine-tune a greedily trained stack by the up-down algorithm; returns one metrics dict per epoch.

    data: rows of the bottom level's visible layer (an array, or a dict with that layer).
    k: Gibbs sweeps in the top level per update; a sequence splits the epochs into that many equal
    consecutive parts, one count each (the paper's 3, 6, 10 over thirds of 300 epochs).
    Each row of the result: epoch, k, reconstruction (mean squared error of the data against its
    deterministic round trip: recognition means up through every level, generative means down), seconds.
    """
    schedule = sweeps(k)
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
            raise DSLError(f"up-down: {name} must be a positive integer, got {value!r}")
    bottom = stack.levels[0]
    rows = as_data(bottom, data, [single(bottom, "visible")])[single(bottom, "visible")]
    order = np.random.default_rng(seed)  # shuffles; on the GPU also seeds the backend's generator each epoch
    trainer = UpDown(stack, lr, order)
    monitored = bottom.xp.asarray(rows[:1000])
    history = []
    for epoch in range(epochs):
        started = time.perf_counter()
        count = schedule[epoch * len(schedule) // epochs]
        if bottom.xp is not np:
            trainer.rng = bottom.random(int(order.integers(2**63)))
        shuffled = bottom.xp.asarray(rows[order.permutation(len(rows))])
        for start in range(0, len(rows), batch_size):
            trainer.step(shuffled[start:start + batch_size], count)
        error = reconstruction(stack, monitored)
        if not np.isfinite(error):
            raise DSLError(f"up-down diverged in epoch {epoch + 1}: the reconstruction error is {error}; try a smaller lr")
        history.append({"epoch": epoch + 1, "k": count, "reconstruction": error, "seconds": time.perf_counter() - started})
    return history


def reconstruction(stack, rows) -> float:
    """Mean squared error of `rows` against their round trip: stack.up through every level, then stack.down."""
    above = rows
    for number in range(len(stack.levels)):
        above = stack.up(number, above)
    for number in reversed(range(len(stack.levels))):
        above = stack.down(number, above)
    return float(np.mean((to_host(above) - to_host(rows)) ** 2))


def sweeps(k) -> tuple[int, ...]:
    """k as a tuple of Gibbs sweep counts (one int, or a non-empty sequence of them), each positive."""
    counts = (k,) if isinstance(k, (int, np.integer)) else tuple(k) if isinstance(k, Sequence) else None
    if not counts or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1 for c in counts):
        raise DSLError(f"up-down: k must be a positive integer or a sequence of them, got {k!r}")
    return tuple(int(c) for c in counts)


def check(stack) -> None:
    """Refuse stacks the up-down updates would get wrong: levels beyond one visible and one hidden layer, units
    whose energy is not linear in their values (the delta rule's expectation needs linearity), or units coupled
    within their layer (the passes draw a layer in one block from its conditional)."""
    for level in stack.levels:
        visible, hidden = single(level, "visible"), single(level, "hidden")
        others = sorted(set(level.layers) - {visible, hidden})
        if others:
            raise DSLError(f"up-down fine-tuning needs levels of one visible and one hidden layer; "
                           f"{level.model.name} also has {', '.join(others)}")
        for name in (visible, hidden):
            info = level.layers[name]
            if units.get(info["unit"]).quadratic:
                raise DSLError(f"up-down fine-tuning needs units with an energy linear in their values; "
                               f"layer '{name}' of {level.model.name} has {info['unit']} units")
            if info["update"] != "block":
                raise DSLError(f"up-down fine-tuning needs conditionally independent units; layer '{name}' of "
                               f"{level.model.name} is coupled within itself")


def apply(level, params: dict, steps: dict) -> None:
    """params += steps in place, projected onto each parameter's declared constraints."""
    for param in level.model.params:
        value = params[param.name]
        value += steps[param.name]
        if param.constraints:
            params[param.name] = constrain(param, value, level.xp)
