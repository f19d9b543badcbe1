"""Binomial units, values 0..n (Teh and Hinton 2001, rate-coded RBMs): the family binomial(n).

A binomial(n) unit is n binary units that share their weights, counted: with
field f, p(x = k | f) = C(n, k) sigmoid(f)^k (1 - sigmoid(f))^(n - k). So
the distribution of a layer is p(x) ∝ C(n, x) exp(-E): the binomial
coefficient is a base measure (`log_measure`), which every free energy that
keeps the layer adds (-log C(n, x) per unit); a layer summed out gets it
through its log-partition n softplus(f) = log of the sum over k of
C(n, k) exp(f k). The mean is n sigmoid(f), a draw rng.binomial(n, sigmoid(f))
(NumPy's and CuPy's Generators both have it).

AIS's base model shares the measure with the model: its energy is
-field . x, so its log Z is n softplus(field) per unit too, and its draws are
binomial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from . import register_family
from .base import Base, UnitType, _position

HELPERS = '''
def binomial_logit(field, n, rng):
    """Counts of n trials on with probability sigmoid(field) each: one binomial draw per unit."""
    return rng.binomial(n, sigmoid(field).astype(xp.float64)).astype(DTYPE)


def binomial_draw(mean, n, rng):
    """A binomial draw given the conditional means n * p."""
    return rng.binomial(n, xp.clip(mean / n, 0, 1).astype(xp.float64)).astype(DTYPE)


def binomial_log_measure(x, n):
    """log C(n, x), the base measure of a count x in 0..n (in x's dtype)."""
    top = xp.full_like(x, n + 1.0)
    return special.gammaln(top) - special.gammaln(x + 1.0) - special.gammaln(top - x)
'''


# Most trials a unit may count: its values are listed (enumeration, pseudo-likelihood), and 0..255 (8-bit
# intensities) is the largest range in use; a mistyped size must not build a tuple of millions at compile time.
MAX_TRIALS = 2**16


@dataclass(frozen=True)
class Binomial(UnitType):
    """binomial(n): the evaluation hooks (entropy, measure, AIS base, support) for counts 0..n."""

    trials: int = 1

    def _log_pmf(self, p: np.ndarray) -> np.ndarray:
        """log Binomial(n, p) of every count, on a new last axis (length n + 1)."""
        from scipy.special import gammaln

        n, k = self.trials, np.arange(self.trials + 1, dtype=float)
        p = np.clip(p, 1e-12, 1 - 1e-12)[..., None]
        return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1) + k * np.log(p) + (n - k) * np.log1p(-p)

    def log_measure_of(self, values: np.ndarray) -> np.ndarray:
        from scipy.special import gammaln

        n, x = self.trials, np.asarray(values, dtype=np.float64)
        measure = gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)
        return measure.reshape(len(x), -1).sum(1)

    def entropy(self, mean: np.ndarray) -> np.ndarray:
        """Entropy of independent Binomial(n, mean / n) units, summed per row."""
        log_pmf = self._log_pmf(np.asarray(mean, dtype=np.float64) / self.trials)
        return -(np.exp(log_pmf) * log_pmf).reshape(len(mean), -1).sum(1)

    def expected_log_measure(self, mean: np.ndarray) -> np.ndarray:
        from scipy.special import gammaln

        n, k = self.trials, np.arange(self.trials + 1, dtype=float)
        pmf = np.exp(self._log_pmf(np.asarray(mean, dtype=np.float64) / n))
        return (pmf * (gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))).reshape(len(mean), -1).sum(1)

    def initial(self, shape, rng, xp):
        """Binomial(n, 1/2) draws: the model with no field (rng: NumPy's or CuPy's Generator)."""
        return xp.asarray(rng.binomial(self.trials, 0.5, shape), dtype=float)

    def fit_base(self, values: np.ndarray) -> Base:
        """Field logit(p), p the data's smoothed mean / n (5 pseudo-counts per value per 100 rows, as for binary)."""
        rows = len(values)
        smoothing = 5 * -(-rows // 100)
        p = ((np.asarray(values, dtype=np.float64) / self.trials).sum(0) + smoothing) / (rows + 2 * smoothing)
        return Base(np.log(p) - np.log1p(-p))

    def base_log_partition(self, base: Base) -> float:
        """n softplus(field) per unit: log of the sum over k of C(n, k) exp(field k), the measure included."""
        return float(self.trials * np.sum(np.logaddexp(0, base.field)))

    def base_sample(self, base: Base, runs: int, rng) -> np.ndarray:
        p = 1 / (1 + np.exp(-base.field))
        return rng.binomial(self.trials, np.broadcast_to(p, (runs,) + p.shape)).astype(float)

    def check_data(self, values, layer: str) -> None:
        """Refuse anything but the integers 0..n (NaN, infinities, fractions, out of range), naming where."""
        values = np.asarray(values)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values) | (values < 0) | (values > self.trials) | (values != np.round(values))
        if bad.any():
            where = np.unravel_index(int(np.argmax(bad)), values.shape)
            raise DataError(f"layer '{layer}' has {self.name} units, which take the integers 0 to {self.trials}; "
                            f"the data has {values[where]:g} at {_position(where)}: {self.remedy}")


def binomial(n: int) -> Binomial:
    """The binomial(n) unit type: counts 0..n of n binary units sharing their weights."""
    n = int(n)
    if not 1 <= n <= MAX_TRIALS:
        raise ValueError(f"binomial(n) takes n from 1 to {MAX_TRIALS:,}, got {n:,}")
    return Binomial(
        f"binomial({n})", True, tuple(range(n + 1)), f"0..{n}: counts of {n} binary units sharing their weights",
        algebra="idempotent" if n == 1 else "", nonnegative=True,
        mean=f"{n} * sigmoid({{f}})", sample=f"binomial_logit({{f}}, {n}, rng)", draw=f"binomial_draw({{m}}, {n}, rng)",
        log_partition=f"{n} * softplus({{f}})", log_measure=f"binomial_log_measure({{x}}, {n})",
        bounds=(0.0, float(n)),
        remedy=f"give counts 0..{n} (intensities x in [0, 1] become round({n} * x))",
        helpers=HELPERS, modules=("special",), trials=n,
    )


register_family("binomial", binomial)
