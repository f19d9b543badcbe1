"""What a unit type is: one object that every stage of the compiler asks about a layer's units.

The IR checks names against the registry; the symbolic stage asks which
energy forms a type accepts and what algebra its values obey; the code
generator asks for the code of its mean, sampler and log-partition function
given the field (and, for quadratic types, the precision); the runtime asks
for a random start and whether data lies in its support. Each built-in type
is a module of this package that builds one UnitType and registers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class Base:
    """Natural parameters of independent units, the base model AIS and RAISE anneal from.

    Its energy is -field . x (+ precision . x^2 / 2 for quadratic types), the
    same form as a layer's conditional, so the generated samplers draw from the
    path between it and the model by adding the base's share to their field
    (`offset`) and precision (`precision_offset`).
    """

    field: np.ndarray
    precision: np.ndarray | None = None  # quadratic types only


@dataclass(frozen=True)
class UnitType:
    """A unit type. Code templates are Python over the generated module's names: {f} the field, {q} the
    precision (quadratic types), {m} the conditional mean where it is already computed, {x} a layer's values.

    energy_form: "linear" (the energy is linear in each unit: discrete types)
      or "quadratic" (a positive squared term and a linear one: Gaussian-like).
    algebra: how powers of one unit reduce: "idempotent" (x^n = x),
      "involution" (s^2 = 1) or "" (none).
    event_axes: trailing axes one unit spans (one-hot: the last axis is one categorical).
    """

    name: str
    discrete: bool
    values: tuple[int, ...] | None  # the values of one unit, when it takes finitely many
    description: str
    energy_form: str = "linear"
    algebra: str = ""
    nonnegative: bool = False  # every value >= 0 (an assumption the symbolic stage may use)
    event_axes: int = 0
    mean: str = ""  # E[unit | field]
    variance: str = ""  # Var[unit | field] (quadratic types: E[x^2] = mean^2 + variance in summed-out statistics)
    sample: str = ""  # a draw given the field (uses rng; quadratic types also get the mean {m})
    draw: str = ""  # a draw given the means already computed ({m}); "" when there is no such shortcut
    log_partition: str = ""  # log of the sum (or integral) over one unit's values of exp(field * value ...)
    packed: str = ""  # the fused kernel family of runtime.fused that draws it (bernoulli, sign for ±1, categorical), if any
    bounds: tuple[float, float] | None = None  # the hull of the support: data (or probabilities) must lie in it
    normalised: bool = False  # each row along the last axis sums to 1 (one-hot states and probabilities)
    remedy: str = ""  # how to bring data into the support, for the error message
    joint: bool = False  # quadratic units coupled to each other are drawn jointly (one multivariate Gaussian per row)
    helpers: str = ""  # Python functions the templates call, emitted into the generated module (over xp, DTYPE, modules)
    modules: tuple[str, ...] = ()  # backend modules the helpers use, by the name a backend manifest gives them ("special")
    log_measure: str = ""  # log of the base measure of a value {x} (p(x) ∝ measure(x) exp(-E)): binomial's log C(n, x); "" when 1

    @property
    def quadratic(self) -> bool:
        return self.energy_form == "quadratic"

    def initial(self, shape: tuple[int, ...], rng, xp) -> np.ndarray:
        """A random state of `shape` (rows first) to start sampling from: uniform over the values, or N(0, 1)."""
        if self.values is not None and len(self.values) == 2:  # a fair coin between the two values
            low, high = self.values
            return low + (high - low) * (rng.random(shape) < 0.5).astype(float)
        if self.values is not None:
            return np.asarray(self.values, dtype=float)[rng.integers(0, len(self.values), shape)]
        if self.event_axes:
            return xp.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
        return rng.standard_normal(shape)

    # ---- evaluation: enumeration, mean-field entropy, the independent base model of AIS and RAISE ----
    @property
    def enumerable(self) -> bool:
        """Whether a layer's states can be listed: finitely many values per unit, or one categorical per group."""
        return self.values is not None or self.event_axes > 0

    def digits(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Radices counting a layer's states: one digit per unit (per categorical group with event axes)."""
        if self.values is not None:
            return (len(self.values),) * prod(shape)
        return (shape[-1],) * prod(shape[:-1])

    def from_digits(self, numbers: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The states whose digits (rows x digits, as counted by `digits`) are `numbers`."""
        rows = len(numbers)
        if self.values is not None:
            return np.asarray(self.values, dtype=float)[numbers].reshape((rows,) + shape)
        return np.eye(shape[-1])[numbers].reshape((rows,) + shape)

    def _two_values(self) -> tuple[float, float]:
        if self.values is None or len(self.values) != 2:
            raise NotImplementedError(f"{self.name} units: only two-valued and categorical types have this yet")
        return float(self.values[0]), float(self.values[1])

    def entropy(self, mean: np.ndarray) -> np.ndarray:
        """Entropy of factorised units with conditional means `mean` (rows first), summed per row."""
        axes = tuple(range(1, mean.ndim))
        if self.event_axes:
            mean = np.clip(mean, 1e-12, 1)
            return -np.sum(mean * np.log(mean), axis=axes)
        low, high = self._two_values()
        p = np.clip((mean - low) / (high - low), 1e-12, 1 - 1e-12)
        return -np.sum(p * np.log(p) + (1 - p) * np.log(1 - p), axis=axes)

    def log_measure_of(self, values: np.ndarray) -> np.ndarray:
        """log of the base measure (template `log_measure`) of each row of `values` (rows first), summed per row."""
        return np.zeros(len(values))

    def expected_log_measure(self, mean: np.ndarray) -> np.ndarray:
        """E[log measure] per row under the factorised units with conditional means `mean` (the mean-field bound)."""
        return np.zeros(len(mean))

    def base_field(self, values: np.ndarray) -> np.ndarray:
        """The field of independent units matching the data's marginals, smoothed as in Salakhutdinov's code.

        Every 100 rows add half a pseudo-count to each value, so no field is infinite.
        """
        rows = len(values)
        smoothing = 5 * -(-rows // 100)
        if self.event_axes:
            counts = values.sum(0) + smoothing
            return np.log(counts / counts.sum(-1, keepdims=True))
        low, high = self._two_values()
        p = (((values - low) / (high - low)).sum(0) + smoothing) / (rows + 2 * smoothing)  # data may be means
        return (np.log(p) - np.log1p(-p)) / (high - low)

    def fit_base(self, values: np.ndarray) -> Base:
        """The base model of AIS and RAISE for an observed layer: independent units fitted to its rows.

        Discrete types match the smoothed marginals; quadratic types a Gaussian
        with each unit's mean and variance (its precision floored at 1e-6 of the
        largest, so a constant column gives a narrow but proper base).
        """
        if not self.quadratic:
            return Base(self.base_field(values))
        mean, variance = values.mean(0), values.var(0)
        variance = np.maximum(variance, 1e-6 * max(float(variance.max(initial=0.0)), 1e-12))
        return Base(mean / variance, 1 / variance)

    def standard_base(self, shape: tuple[int, ...]) -> Base:
        """The base for a layer no data describes: uniform over the values, or unit precision and no field."""
        if not self.quadratic:
            return Base(np.zeros(shape))
        return Base(np.zeros(shape), np.ones(shape))

    def base_log_partition(self, base: Base) -> float:
        """log Z of independent units with natural parameters `base` (all units together)."""
        field = base.field
        if self.quadratic:
            return float(np.sum(field**2 / (2 * base.precision) + 0.5 * np.log(2 * np.pi / base.precision)))
        if self.event_axes:
            top = field.max(axis=-1, keepdims=True)
            return float(np.sum(top[..., 0] + np.log(np.exp(field - top).sum(-1))))
        low, high = self._two_values()
        return float(np.sum(low * field + np.logaddexp(0, (high - low) * field)))

    def base_sample(self, base: Base, runs: int, rng) -> np.ndarray:
        """`runs` exact draws of independent units with natural parameters `base`."""
        field = base.field
        if self.quadratic:
            return field / base.precision + rng.standard_normal((runs,) + field.shape) / np.sqrt(base.precision)
        if self.event_axes:
            probabilities = np.exp(field - field.max(axis=-1, keepdims=True))
            cumulative = (probabilities / probabilities.sum(-1, keepdims=True)).cumsum(-1)
            u = rng.random((runs,) + field.shape[:-1] + (1,))
            return np.eye(field.shape[-1])[np.minimum((cumulative < u).sum(-1), field.shape[-1] - 1)]
        low, high = self._two_values()
        on = rng.random((runs,) + field.shape) < 1 / (1 + np.exp(-(high - low) * field))
        return low + (high - low) * on.astype(float)

    def check_data(self, values, layer: str) -> None:
        """Refuse data outside the support, naming the layer, the first offending value and where it is.

        values: the layer's rows, the batch axis first. NaN and infinities are
        refused for every type; the bounds are inclusive, so probabilities pass
        (a binary layer's data may be the means of its units).
        """
        values = np.asarray(values)
        bad = ~np.isfinite(values)
        if self.bounds is not None:
            bad |= (values < self.bounds[0]) | (values > self.bounds[1])
        support = f"layer '{layer}' has {self.name} units"
        if self.bounds is not None:
            low, high = self.bounds
            support += f", which take values in [{low:g}, {high:g}]"
        advice = f": {self.remedy}" if self.remedy else ""
        if bad.any():
            where = np.unravel_index(int(np.argmax(bad)), values.shape)
            raise DataError(f"{support}; the data has {values[where]:g} at {_position(where)}{advice}")
        if self.normalised and values.size:
            sums = values.sum(axis=-1)
            off = np.abs(sums - 1) > 1e-4
            if off.any():
                where = np.unravel_index(int(np.argmax(off)), sums.shape)
                raise DataError(f"a row of layer '{layer}' is not one of its states: its {self.name} units take rows "
                                f"summing to 1 along the last axis (a state, or probabilities of states), and the "
                                f"one at {_position(where)} sums to {sums[where]:g}{advice}")


def _position(index: tuple) -> str:
    """'row 3, unit 5' (or 'unit (1, 2)' for layers of several axes)."""
    row, unit = int(index[0]), tuple(int(i) for i in index[1:])
    if not unit:
        return f"row {row}"
    return f"row {row}, unit {unit[0] if len(unit) == 1 else unit}"
