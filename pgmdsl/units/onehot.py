"""One-hot units: the last axis is one categorical variable, p(k | field) = softmax(field)_k."""

from . import register
from .base import UnitType

ONEHOT = register(UnitType(
    "onehot", True, None, "categorical over the last axis: softmax",
    algebra="idempotent", nonnegative=True, event_axes=1,
    mean="softmax({f})", sample="categorical(softmax({f}), rng)", draw="categorical({m}, rng)",
    packed="categorical", log_partition="logsumexp({f}, axis=-1)",
    bounds=(0.0, 1.0), normalised=True,
    remedy="give each row one 1 (or probabilities summing to 1) along the last axis",
))
