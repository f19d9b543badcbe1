"""Gaussian units: density proportional to exp(-q x^2 / 2 + f x), so x | rest ~ N(f / q, 1 / q).

The energy must hold a positive squared term (the precision q) besides the
linear one (the field f); units coupled to each other through it are drawn
jointly (the prelude's gaussian_joint_* kernels, a Cholesky per row).
"""

from . import register
from .base import UnitType

GAUSSIAN = register(UnitType(
    "gaussian", False, None, "real: needs a positive quadratic term",
    energy_form="quadratic", joint=True,
    mean="{f} / {q}", variance="1 / {q}", sample="{m} + rng.standard_normal({m}.shape, dtype=DTYPE) / xp.sqrt({q})",
    log_partition="{f}**2 / (2*{q}) + 0.5*xp.log(2*xp.pi/{q})",
))
