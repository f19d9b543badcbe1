"""Rectified Gaussian units (Tubiana and Monasson 2017): h >= 0 with density ∝ exp(-q h^2 / 2 + f h).

Written in the energy like a Gaussian, with its positive squared term (the
precision q) and its field f; the support h >= 0 makes the conditional a
normal N(f/q, 1/q) truncated to the positive half-line. With a = f / sqrt(q):

    log Z(f, q) = a^2 / 2 + log(sqrt(2 pi / q)) + log Phi(a)
    E[h]        = (a + phi(a) / Phi(a)) / sqrt(q)
    Var[h]      = (1 - a lambda - lambda^2) / q,  lambda = phi(a) / Phi(a)
    a draw      = (a - w) / sqrt(q), w ~ N(0, 1) truncated to w < a,
                  w = Phi^-1(u Phi(a)) computed as ndtri_exp(log u + log Phi(a))

all in log space (scipy.special.log_ndtr, ndtri_exp), so a field far below
zero (a = -40: Phi(a) ~ 1e-350) still gives exact, finite values. Units
coupled to each other are not supported: a truncated multivariate normal has
no closed-form sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import register
from .base import Base, UnitType

HELPERS = '''
def _ndtri_exp(y):
    """Phi^-1(exp(y)) for y <= 0 (scipy.special.ndtri_exp where the backend has it)."""
    if hasattr(special, "ndtri_exp"):
        return special.ndtri_exp(y)
    tail = y < -600.0  # exp(y) underflows: the asymptotic inverse of log Phi(x) ~ -x^2/2 - log(-x sqrt(2 pi))
    x = -xp.sqrt(xp.maximum(-2 * y - xp.log(-4 * xp.pi * y), 0))
    return xp.where(tail, x, special.ndtri(xp.exp(xp.where(tail, -1.0, y))))


def relu_log_partition(field, precision):
    """log of the integral over h >= 0 of exp(field h - precision h^2 / 2)."""
    a = field / xp.sqrt(precision)
    return 0.5 * a * a + 0.5 * xp.log(2 * xp.pi / precision) + special.log_ndtr(a)


def relu_mean(field, precision):
    """E[h]: the mean of N(field / precision, 1 / precision) truncated to h >= 0."""
    root = xp.sqrt(precision)
    a = field / root
    return (a + xp.exp(-0.5 * a * a - special.log_ndtr(a)) / xp.sqrt(2 * xp.pi)) / root


def relu_variance(field, precision):
    """Var[h]: (1 - a lambda - lambda^2) / precision with lambda = phi(a) / Phi(a), a = field / sqrt(precision)."""
    a = field / xp.sqrt(precision)
    ratio = xp.exp(-0.5 * a * a - special.log_ndtr(a)) / xp.sqrt(2 * xp.pi)
    return xp.maximum(1 - a * ratio - ratio * ratio, 0) / precision


def relu_sample(field, precision, rng):
    """Exact draws of the truncated normal by inversion in log space."""
    root = xp.sqrt(precision)
    a = field / root
    u = rng.random(a.shape, dtype=DTYPE)
    w = _ndtri_exp(xp.log(u) + special.log_ndtr(a))
    return xp.maximum((a - w) / root, 0).astype(DTYPE)
'''


@dataclass(frozen=True)
class RectifiedGaussian(UnitType):
    """The rectified Gaussian: a Gaussian-like unit whose base model and random start respect h >= 0."""

    def initial(self, shape, rng, xp):
        return np.abs(rng.standard_normal(shape))

    def base_log_partition(self, base: Base) -> float:
        from scipy.special import log_ndtr

        a = base.field / np.sqrt(base.precision)
        return float(np.sum(0.5 * a * a + 0.5 * np.log(2 * np.pi / base.precision) + log_ndtr(a)))

    def base_sample(self, base: Base, runs: int, rng) -> np.ndarray:
        from scipy.special import log_ndtr, ndtri_exp

        root = np.sqrt(base.precision)
        a = base.field / root
        w = ndtri_exp(np.log(rng.random((runs,) + a.shape)) + log_ndtr(a))
        return np.maximum((a - w) / root, 0)


RELU = register(RectifiedGaussian(
    "relu", False, None, "real >= 0: a Gaussian truncated to the positive half-line (needs a positive quadratic term)",
    energy_form="quadratic", nonnegative=True,
    mean="relu_mean({f}, {q})", variance="relu_variance({f}, {q})", sample="relu_sample({f}, {q}, rng)",
    log_partition="relu_log_partition({f}, {q})",
    bounds=(0.0, float("inf")), remedy="rectified units take values >= 0",
    helpers=HELPERS, modules=("special",),
))
