"""Training options, validated from a declared table (as scikit-learn's _parameter_constraints)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from ..errors import DSLError

MAX_SWEEPS = 10_000  # Gibbs or mean-field sweeps per update: far beyond any use (k = 1000 is already slow)
MAX_TEMPERATURES = 1000  # parallel tempering's ladder: chains at every one, so far beyond any use


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _nonnegative(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _sweeps(value) -> bool:
    """A sweep count: more than MAX_SWEEPS would run for hours without a line of output."""
    return _positive_int(value) and value <= MAX_SWEEPS


def _positive(value) -> bool:
    return _nonnegative(value) and value > 0


def _target(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1


def _rates(value) -> bool:
    """Per-parameter learning rates: names to numbers >= 0 (0 freezes a parameter), one of them positive."""
    return (isinstance(value, dict) and bool(value) and all(isinstance(k, str) for k in value)
            and all(_nonnegative(v) for v in value.values()) and any(v > 0 for v in value.values()))


def _ladder(value) -> bool:
    """None (the sampler's default), a count of temperatures, or inverse temperatures in (0, 1] with 1 among them."""
    if value is None or (_positive_int(value) and 2 <= value <= MAX_TEMPERATURES):
        return True
    if not isinstance(value, tuple) or not 2 <= len(value) <= MAX_TEMPERATURES:
        return False
    if not all(isinstance(b, float) and math.isfinite(b) and 0 < b <= 1 for b in value) or 1.0 not in value:
        return False
    steps = [b - a for a, b in zip(value, value[1:])]
    return all(step > 0 for step in steps) or all(step < 0 for step in steps)


def _method(value) -> bool:
    from . import samplers

    return isinstance(value, str) and value in samplers.names()


def _methods() -> str:
    from . import samplers

    return samplers.described()


CHECKS = {
    "method": (_method, _methods),
    "k": (_sweeps, f"a positive integer up to {MAX_SWEEPS}"),
    "epochs": (_positive_int, "a positive integer"),
    "batch_size": (_positive_int, "a positive integer"),
    "lr": (lambda v: _positive(v) or _rates(v), "a positive number or a dict of parameter names to rates >= 0"),
    "lr_schedule": (lambda v: v in ("constant", "linear", "inverse"), "'constant', 'linear' or 'inverse'"),
    "lr_decay": (_nonnegative, "a number >= 0"),
    "lr_min": (_nonnegative, "a number >= 0"),
    "momentum": (lambda v: _nonnegative(v) and v < 1, "a number in [0, 1)"),
    "initial_momentum": (lambda v: v is None or (_nonnegative(v) and v < 1), "None or a number in [0, 1)"),
    "momentum_epochs": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "weight_decay": (_nonnegative, "a number >= 0"),
    "sparsity_target": (lambda v: v is None or _target(v) or (isinstance(v, dict) and bool(v) and all(
        isinstance(k, str) and _target(t) for k, t in v.items())),
        "None, a number in (0, 1) or a dict of hidden layer names to such numbers"),
    "sparsity_cost": (_nonnegative, "a number >= 0"),
    "sparsity_decay": (lambda v: _nonnegative(v) and v < 1, "a number in [0, 1)"),
    "chains": (lambda v: v is None or _positive_int(v), "None or a positive integer"),
    "mean_field_steps": (_sweeps, f"a positive integer up to {MAX_SWEEPS}"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "checkpoint_every": (_positive_int, "a positive integer"),
    "verbose": (lambda v: v in (0, 1, 2), "0, 1 or 2"),
    "fused": (lambda v: isinstance(v, bool), "True or False"),
    "objective": (lambda v: v in ("generative", "discriminative", "hybrid"),
                  "'generative', 'discriminative' or 'hybrid'"),
    "labels": (lambda v: v is None or (isinstance(v, str) and v != ""), "None or a layer name"),
    "generative_weight": (_nonnegative, "a number >= 0"),
    "hmc": (lambda v: isinstance(v, bool) or (isinstance(v, dict) and all(k in ("steps", "step_size", "target")
                                                                         for k in v)),
            "True, False or a dict of steps, step_size and target (runtime.hmc)"),
    "temperatures": (_ladder, f"None, a number of temperatures from 2 to {MAX_TEMPERATURES} (geometric from 1 to "
                              "0.1) or the inverse temperatures, increasing or decreasing, in (0, 1] and including 1.0"),
}


@dataclass(frozen=True)
class TrainingOptions:
    """How `fit` trains; every field is checked against CHECKS."""

    method: str = "cd"
    k: int = 1
    epochs: int = 10
    batch_size: int = 10
    lr: float | dict = 0.05  # one rate, or {param: rate}: the schedule then scales every rate alike
    lr_schedule: str = "constant"  # constant | linear (to lr_min at the end) | inverse (lr / (1 + decay t))
    lr_decay: float = 0.0
    lr_min: float = 0.0
    momentum: float = 0.0
    initial_momentum: float | None = None  # the momentum of the first momentum_epochs epochs (Hinton's guide: 0.5)
    momentum_epochs: int = 5
    weight_decay: float = 0.0  # L2 on parameters with two or more axes (weights, not biases)
    sparsity_target: float | dict | None = None  # Lee et al. (2008): mean activation of binary hidden layers (or per layer)
    sparsity_cost: float = 0.0
    sparsity_decay: float = 0.9
    chains: int | None = None  # persistent chains for PCD (default: batch_size)
    mean_field_steps: int = 10  # data phase for latent layers that are not summed out (DBM)
    seed: int = 0
    checkpoint_every: int = 1
    verbose: int = 1
    fused: bool = True  # the packed few-call update (runtime.fused) where the model allows it
    objective: str = "generative"  # log p(data) by CD/PCD; log p(labels | rest) exactly; or both (hybrid)
    labels: str | None = None  # the label layer for the discriminative and hybrid objectives
    generative_weight: float = 0.01  # hybrid: weight of the generative step (Larochelle and Bengio 2008)
    temperatures: int | tuple | None = None  # pt: a count (default 10, geometric from 1 to 0.1) or the ladder itself
    hmc: bool | dict = False  # jointly drawn Gaussian layers by hybrid Monte Carlo (runtime.hmc), not exactly

    def __post_init__(self):
        object.__setattr__(self, "temperatures", _as_ladder(self.temperatures))
        for field in fields(self):
            check, wanted = CHECKS[field.name]
            value = getattr(self, field.name)
            if not check(value):
                wanted = wanted() if callable(wanted) else wanted
                raise DSLError(f"fit: {field.name} must be {wanted}, got {_shown(value)}")
        self._check_settings()
        if self.objective != "generative" and self.labels is None:
            raise DSLError(f"fit: objective='{self.objective}' needs labels= (the label layer; --labels LAYER on "
                           "the command line)")

    def _check_settings(self) -> None:
        """Options only some samplers read (temperatures: pt's) are refused with the others."""
        from . import samplers

        for name in ("temperatures",):
            if getattr(self, name) is not None and name not in samplers.get(self.method).settings:
                takes = [f"'{m}'" for m in samplers.names() if name in samplers.get(m).settings]
                raise DSLError(f"fit: {name}= is for method={' or '.join(takes)}, not method='{self.method}'")

    @property
    def base_lr(self) -> float:
        """The rate the schedule moves: lr, or 1 with per-parameter rates (each then multiplies it)."""
        return 1.0 if isinstance(self.lr, dict) else self.lr

    def learning_rate(self, update: int, total: int) -> float:
        if self.lr_schedule == "inverse":
            return max(self.base_lr / (1 + self.lr_decay * update), self.lr_min)
        if self.lr_schedule == "linear":
            return self.base_lr + (self.lr_min - self.base_lr) * min(update / max(total, 1), 1.0)
        return self.base_lr

    def momentum_at(self, epoch: int) -> float:
        """The momentum of 0-based `epoch`: initial_momentum for the first momentum_epochs, then momentum."""
        if self.initial_momentum is not None and epoch < self.momentum_epochs:
            return self.initial_momentum
        return self.momentum

    def sparsity_of(self, layer: str) -> float | None:
        """The target mean activation of `layer` (None: the layer has none)."""
        if isinstance(self.sparsity_target, dict):
            return self.sparsity_target.get(layer)
        return self.sparsity_target

    def parameter_rates(self, params: list[str]) -> dict[str, float] | None:
        """Each parameter's multiplier of the scheduled rate (None: one rate for all), checked against `params`."""
        if not isinstance(self.lr, dict):
            return None
        unknown = sorted(set(self.lr) - set(params))
        missing = [name for name in params if name not in self.lr]
        if unknown or missing:
            problem = f"names no parameter {', '.join(unknown)}" if unknown else f"gives no rate for {', '.join(missing)}"
            raise DSLError(f"fit: lr {problem} (the model's parameters: {', '.join(params)})")
        return {name: float(self.lr[name]) for name in params}

    def as_dict(self) -> dict:
        return {field.name: getattr(self, field.name) for field in fields(self)}


def _as_ladder(value):
    """A sequence of inverse temperatures as a tuple of floats (JSON-able, hashable); anything else as given."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1:
        if all(isinstance(b, (int, float, np.integer, np.floating)) and not isinstance(b, (bool, np.bool_))
               for b in value):
            return tuple(float(b) for b in value)
    return value


def _shown(value) -> str:
    """repr, cut to one short line (a ladder of a thousand values is no message)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def options(**given) -> TrainingOptions:
    known = {field.name for field in fields(TrainingOptions)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise DSLError(f"fit: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                       f"(options: {', '.join(sorted(known))})")
    return TrainingOptions(**given)
