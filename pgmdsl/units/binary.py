"""Binary units, values {0, 1}: p(x = 1 | field) = sigmoid(field)."""

from . import register
from .base import UnitType

BINARY = register(UnitType(
    "binary", True, (0, 1), "{0,1}: conditional is sigmoid(field)",
    algebra="idempotent", nonnegative=True,
    mean="sigmoid({f})", sample="bernoulli_logit({f}, rng)", draw="bernoulli({m}, rng)",
    packed="bernoulli", log_partition="softplus({f})",
    bounds=(0.0, 1.0),
    remedy="scale the rows into [0, 1] (divide by the largest value) or binarise them "
           "(--data digits-binary is scikit-learn's digits binarised)",
))
