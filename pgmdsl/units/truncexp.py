"""Truncated exponential units: x in [0, 1] with density ∝ exp(f x) (Bengio, Lamblin, Popovici and Larochelle 2007).

A continuous unit for data that lives in an interval, grey levels or
proportions, which binary units only fit as probabilities. The energy is
linear in x, as for binary units, so any RBM-shaped energy accepts it:

    log Z(f) = log((e^f - 1) / f)                   (0 at f = 0)
    E[x]     = 1 / (1 - e^-f) - 1 / f               (1/2 at f = 0)
    Var[x]   = 1 / f^2 - 1 / (4 sinh^2(f / 2))      (1/12 at f = 0)
    a draw   = log(1 + u (e^f - 1)) / f, u ~ U(0, 1) (inverting the CDF)

each written so that no branch overflows: for f > 0 through e^-f, with
series near f = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import register
from .base import Base, UnitType

HELPERS = '''
def _truncexp_parts(field, near=1e-2):
    """The field kept away from 0 (where the closed forms are 0/0, and lose digits within `near`), and that mask."""
    small = xp.abs(field) < near
    return xp.where(small, 1.0, field), small


def truncexp_log_partition(field):
    """log of the integral over [0, 1] of exp(field x): max(f, 0) + log((1 - e^-|f|) / |f|)."""
    f, small = _truncexp_parts(field)
    a = xp.abs(f)
    closed = xp.maximum(f, 0) + xp.log(-xp.expm1(-a)) - xp.log(a)
    return xp.where(small, field / 2 + field**2 / 24 - field**4 / 2880, closed)


def truncexp_mean(field):
    """E[x]: 1/(1 - e^-|f|) - 1/|f| at |f|; at -|f| it is 1 minus that (x -> 1 - x)."""
    f, small = _truncexp_parts(field)
    a = xp.abs(f)
    upper = 1 / -xp.expm1(-a) - 1 / a
    return xp.where(small, 0.5 + field / 12 - field**3 / 720, xp.where(f > 0, upper, 1 - upper))


def truncexp_variance(field):
    """Var[x] = 1/f^2 - e^-|f| / (1 - e^-|f|)^2, the same for f and -f."""
    f, small = _truncexp_parts(field)
    a = xp.abs(f)
    return xp.where(small, 1 / 12 - field**2 / 240 + field**4 / 6048, 1 / (a * a) - xp.exp(-a) / xp.expm1(-a) ** 2)


def truncexp_sample(field, rng):
    """Exact draws by inverting the CDF, from the side where nothing overflows:
    1 + log1p((1 - u) expm1(-f)) / f for f > 0, log1p(u expm1(f)) / f for f < 0."""
    f, small = _truncexp_parts(field, near=1e-12)
    a = xp.abs(f)
    u = rng.random(xp.shape(field), dtype=DTYPE)
    positive = 1 + xp.log1p((1 - u) * xp.expm1(-a)) / a
    negative = xp.log1p(u * xp.expm1(-a)) / -a
    return xp.clip(xp.where(small, u, xp.where(f > 0, positive, negative)), 0, 1).astype(DTYPE)
'''


def _namespace() -> dict:
    """The helpers over NumPy, for the base model's host-side computations (the same code the modules run)."""
    namespace = {"xp": np, "DTYPE": np.float64}
    exec(HELPERS, namespace)  # our own constant source, not data
    return namespace


@dataclass(frozen=True)
class TruncatedExponential(UnitType):
    """Interval-valued units: their base model matches each unit's data mean (by Newton on E[x](f))."""

    def initial(self, shape, rng, xp):
        return rng.random(shape)

    def fit_base(self, values: np.ndarray) -> Base:
        """The field whose mean is each unit's data mean, smoothed towards 1/2 as the binary base is (five
        pseudo-rows at each end per 100 rows): a unit the data keeps at 0 gets a field near -20, not -1000, which
        AIS could only leave in its last few distributions."""
        helpers = _namespace()
        rows = len(values)
        smoothing = 5 * -(-rows // 100)
        target = (values.sum(0) + smoothing) / (rows + 2 * smoothing)
        field = np.zeros_like(target)
        for _ in range(50):  # E[x](f) rises with slope Var[x](f) > 0: Newton converges from f = 0
            step = (helpers["truncexp_mean"](field) - target) / helpers["truncexp_variance"](field)
            field = np.clip(field - step, -1e3, 1e3)
            if np.max(np.abs(step)) < 1e-12:
                break
        return Base(field)

    def base_log_partition(self, base: Base) -> float:
        return float(np.sum(_namespace()["truncexp_log_partition"](base.field)))

    def base_sample(self, base: Base, runs: int, rng) -> np.ndarray:
        return _namespace()["truncexp_sample"](np.broadcast_to(base.field, (runs,) + base.field.shape), rng)


TRUNCEXP = register(TruncatedExponential(
    "truncexp", False, None, "real in [0, 1]: density ∝ exp(field x) (energy linear in the unit)",
    nonnegative=True,
    mean="truncexp_mean({f})", variance="truncexp_variance({f})", sample="truncexp_sample({f}, rng)",
    log_partition="truncexp_log_partition({f})",
    bounds=(0.0, 1.0), remedy="scale the rows into [0, 1] (divide by the largest value)",
    helpers=HELPERS,
))
