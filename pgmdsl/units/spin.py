"""Spin units, values {-1, +1}: E[s | field] = tanh(field), log-partition log(2 cosh(field))."""

from . import register
from .base import UnitType

SPIN = register(UnitType(
    "spin", True, (-1, 1), "{-1,+1}: conditional mean is tanh(field)",
    algebra="involution",
    mean="xp.tanh({f})", sample="spins({f}, rng)", draw="2*bernoulli(({m} + 1)/2, rng) - 1",
    packed="sign", log_partition="log2cosh({f})",
    bounds=(-1.0, 1.0), remedy="map the rows into [-1, 1] (2x - 1 for values in [0, 1])",
))
