"""The unit-type registry: every built-in type is an object registered through the public API,
and the stages that ask the object (derivation, code generation, sampling starts) treat an alias alike."""

from __future__ import annotations

import numpy as np
import pytest

import pgmdsl
from pgmdsl import resources, units
from pgmdsl.units.base import Base

RBM = (resources.models_dir() / "rbm.dgm").read_text(encoding="utf-8")
GBRBM = (resources.models_dir() / "gbrbm.dgm").read_text(encoding="utf-8")


@pytest.fixture
def alias(monkeypatch):
    """Register an existing type under a new name for one test (the registry is process-wide)."""
    def register(existing: str, name: str):
        monkeypatch.setitem(units._REGISTRY, name, units.get(existing))
        units.register(units.get(existing), name)

    return register


def test_the_built_in_types_are_registered_objects():
    assert units.names()[:5] == ("binary", "spin", "gaussian", "onehot", "relu")
    for name in units.names():
        unit = units.get(name)
        assert isinstance(unit, units.UnitType) and unit.name == name
    assert units.get("gaussian").quadratic and not units.get("binary").quadratic
    assert units.get("nothing") is None


@pytest.mark.parametrize("name", ["", "2x", "_private", "a b", None])
def test_a_unit_type_name_must_be_an_identifier(name):
    with pytest.raises(ValueError, match="identifier"):
        units.register(units.get("binary"), name if name is not None else 3)


@pytest.mark.parametrize("text, existing, alias_name, layer, sizes", [
    (RBM, "binary", "bit", "h", dict(nv=5, nh=3)),
    (GBRBM, "gaussian", "normal_unit", "v", dict(nv=4, nh=3)),
])
def test_a_type_registered_under_a_second_name_gives_identical_results(alias, text, existing, alias_name, layer, sizes):
    alias(existing, alias_name)
    renamed = text.replace(f"{layer}[n{layer}]: {existing}", f"{layer}[n{layer}]: {alias_name}")
    assert renamed != text
    original = pgmdsl.parse(text, "m.dgm", **sizes).compile(cache=False, seed=1, dtype="float64")
    aliased = pgmdsl.parse(renamed, "m.dgm", **sizes).compile(cache=False, seed=1, dtype="float64")
    rng = np.random.default_rng(0)
    state = {n: rng.integers(0, 2, (4,) + tuple(info["shape"])).astype(float) for n, info in original.layers.items()}
    np.testing.assert_array_equal(aliased.energy(state), original.energy(state))
    np.testing.assert_array_equal(aliased.free_energy(state), original.free_energy(state))
    for name in original.sampled:
        np.testing.assert_array_equal(aliased.mean(name, state), original.mean(name, state))
        np.testing.assert_array_equal(aliased.sample_layer(name, state, np.random.default_rng(2)),
                                      original.sample_layer(name, state, np.random.default_rng(2)))
    np.testing.assert_array_equal(aliased.sample(3, steps=2, seed=5)[layer], original.sample(3, steps=2, seed=5)[layer])
    from pgmdsl.evaluate import exact_log_z

    assert exact_log_z(aliased) == exact_log_z(original)
    visible = {n: v for n, v in state.items() if original.layers[n]["role"] == "visible"}
    for compiled in (original, aliased):  # the packed update (rbm) and the generic one (gbrbm) alike
        compiled.fit(visible, epochs=2, batch_size=2, seed=3, method="pcd", check_data=False)
    for name, value in original.params.items():
        np.testing.assert_array_equal(aliased.params[name], value)


@pytest.mark.parametrize("name", ["binary", "spin", "gaussian", "onehot"])
def test_a_random_start_lies_in_the_support(name):
    unit = units.get(name)
    start = unit.initial((50, 4), np.random.default_rng(0), np)
    assert start.shape == (50, 4)
    unit.check_data(start, "x")
    if unit.values is not None:
        assert set(np.unique(start)) == set(unit.values)


def test_entropies_of_factorised_units_match_their_definitions():
    """Mean-field entropies: binary p = mean, spin p(+1) = (1 + mean) / 2 (negative means too), one-hot -sum p log p."""
    def h(p):
        return -(p * np.log(p) + (1 - p) * np.log(1 - p))

    np.testing.assert_allclose(units.get("binary").entropy(np.array([[0.25, 0.5]])), [h(0.25) + h(0.5)])
    np.testing.assert_allclose(units.get("spin").entropy(np.array([[-0.5, 0.5]])), [2 * h(0.25)])
    p = np.array([[[0.2, 0.3, 0.5]]])
    np.testing.assert_allclose(units.get("onehot").entropy(p), [-(p * np.log(p)).sum()])


@pytest.mark.parametrize("name", ["binary", "spin", "onehot"])
def test_the_base_model_of_ais_is_exact_for_independent_units(name):
    """base_log_partition against enumeration; base_sample's frequencies against the base model's marginals."""
    unit = units.get(name)
    rng = np.random.default_rng(0)
    shape = (3,) if name != "onehot" else (2, 3)
    field = rng.normal(size=shape)
    digits = unit.digits(shape)
    numbers = np.array(np.unravel_index(np.arange(int(np.prod(digits))), digits)).T
    states = unit.from_digits(numbers, shape)
    exact = np.log(np.exp((states * field).reshape(len(states), -1).sum(1)).sum())
    assert unit.base_log_partition(Base(field)) == pytest.approx(exact, abs=1e-12)
    draws = unit.base_sample(Base(field), 200_000, rng)
    mean = (states * np.exp((states * field).reshape(len(states), -1).sum(1) - exact)[:, None].reshape(
        (-1,) + (1,) * len(shape))).sum(0)
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.01)
    # fitted to data, the base model has the data's marginals shrunk by 5 pseudo-counts per value per 100 rows
    fitted = unit.fit_base(draws[:1000]).field
    low, high = (0.0, 1.0) if unit.event_axes else unit.values
    frequency = ((draws[:1000] - low) / (high - low)).mean(0)
    if unit.event_axes:
        np.testing.assert_allclose(np.exp(fitted) / np.exp(fitted).sum(-1, keepdims=True),
                                   (1000 * frequency + 50) / (1000 + 50 * shape[-1]))
    else:
        np.testing.assert_allclose(1 / (1 + np.exp(-(high - low) * fitted)), (1000 * frequency + 50) / (1000 + 100))


@pytest.mark.parametrize("name", ["gaussian", "relu"])
def test_the_base_model_of_real_valued_units_is_exact(name):
    """log Z of independent units by quadrature; draws with the base's mean and variance (scipy.stats)."""
    from scipy import integrate, stats

    unit = units.get(name)
    base = Base(np.array([0.7, -2.0, 3.0]), np.array([1.3, 0.5, 4.0]))
    low = 0.0 if name == "relu" else -np.inf
    exact = sum(np.log(integrate.quad(lambda x: np.exp(f * x - q * x * x / 2), low, np.inf)[0])
                for f, q in zip(base.field, base.precision))
    assert unit.base_log_partition(base) == pytest.approx(exact, abs=1e-9)
    draws = unit.base_sample(base, 200_000, np.random.default_rng(0))
    scale = 1 / np.sqrt(base.precision)
    law = stats.truncnorm((low - base.field / base.precision) / scale, np.inf, base.field / base.precision, scale)
    np.testing.assert_allclose(draws.mean(0), law.mean(), atol=0.01)
    np.testing.assert_allclose(draws.var(0), law.var(), rtol=0.02)
    assert (name != "relu") or draws.min() >= 0


def test_a_real_valued_base_is_fitted_to_the_datas_moments():
    rows = np.random.default_rng(1).normal([1.0, -2.0], [0.5, 3.0], (5000, 2))
    base = units.get("gaussian").fit_base(rows)
    np.testing.assert_allclose(base.field / base.precision, rows.mean(0))
    np.testing.assert_allclose(1 / base.precision, rows.var(0))
    constant = units.get("gaussian").fit_base(np.ones((10, 2)))  # no spread: a narrow, proper base
    assert np.all(np.isfinite(constant.precision)) and np.all(constant.precision > 0)
    assert units.get("binary").standard_base((3,)).precision is None
    np.testing.assert_array_equal(units.get("relu").standard_base((2,)).precision, np.ones(2))


def relu_module(dtype="float64"):
    """The relu unit type's generated helpers, run as the generated module runs them."""
    namespace = {"xp": np, "DTYPE": getattr(np, dtype)}
    import scipy.special

    namespace["special"] = scipy.special
    exec(units.get("relu").helpers, namespace)
    return namespace


@pytest.mark.parametrize("field, precision", [(0.3, 1.0), (-2.5, 0.7), (4.0, 2.0), (-40.0, 1.0), (60.0, 0.5)])
def test_rectified_gaussian_units_match_quadrature(field, precision):
    """log-partition and mean by quadrature (tails included), and the sampler's moments, at fields far from zero."""
    from scipy import integrate, stats

    helpers = relu_module()
    f, q = np.array([field]), np.array([precision])
    mode, scale = max(field / precision, 0.0), 1 / np.sqrt(precision)
    limits = (0, mode + 40 * scale)
    density = lambda h: np.exp(f[0] * h - q[0] * h * h / 2 - (f[0] * mode - q[0] * mode * mode / 2))
    z = integrate.quad(density, *limits, points=[mode], epsabs=0, epsrel=1e-12, limit=200)[0]
    log_z = np.log(z) + f[0] * mode - q[0] * mode * mode / 2
    mean = integrate.quad(lambda h: h * density(h), *limits, points=[mode], epsabs=0, epsrel=1e-12, limit=200)[0] / z
    np.testing.assert_allclose(helpers["relu_log_partition"](f, q), [log_z], rtol=1e-10)
    np.testing.assert_allclose(helpers["relu_mean"](f, q), [mean], rtol=1e-8)
    square = integrate.quad(lambda h: h * h * density(h), *limits, points=[mode], epsabs=0, epsrel=1e-12, limit=200)[0]
    np.testing.assert_allclose(helpers["relu_variance"](f, q), [square / z - mean**2], rtol=1e-6)
    draws = helpers["relu_sample"](np.full(100_000, field), np.full(100_000, precision), np.random.default_rng(2))
    law = stats.truncnorm(-field / precision / scale, np.inf, field / precision, scale)
    assert draws.min() >= 0 and np.all(np.isfinite(draws))
    assert abs(draws.mean() - law.mean()) < 5 * law.std() / np.sqrt(len(draws))
    assert stats.kstest(draws, law.cdf).pvalue > 1e-3


def test_rectified_gaussian_helpers_keep_float32():
    helpers = relu_module("float32")
    f, q = np.array([0.5, -30.0], dtype=np.float32), np.ones(2, dtype=np.float32)
    draws = helpers["relu_sample"](f, q, np.random.default_rng(0))
    assert draws.dtype == np.float32 and np.all(draws >= 0)
    assert np.all(np.isfinite(helpers["relu_mean"](f, q))) and np.all(np.isfinite(helpers["relu_log_partition"](f, q)))


def test_the_inverse_of_log_phi_without_scipys_ndtri_exp_stays_accurate():
    """A backend whose special module lacks ndtri_exp (older CuPy) falls back to ndtri and the asymptotic tail."""
    import scipy.special

    class Without:
        ndtri = staticmethod(scipy.special.ndtri)
        log_ndtr = staticmethod(scipy.special.log_ndtr)

    helpers = relu_module()
    helpers["special"] = Without()
    y = np.array([-1e-3, -1.0, -50.0, -599.0, -650.0, -2000.0])
    np.testing.assert_allclose(helpers["_ndtri_exp"](y), scipy.special.ndtri_exp(y), rtol=2e-3)
