"""Rectified Gaussian (relu) and truncated exponential (truncexp) layers in compiled models, against quadrature.

Every expected value is computed here from the energy by one-dimensional
numerical integration (the units of a layer are independent given the other
layer): free energies, log Z, conditional means and draws, and the gradient
statistics as finite differences of the integrated free energy. Both backends
run the same checks (the CuPy module on NumPy through its test seam).
"""

import itertools

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

import pgmdsl
from pgmdsl import units
from pgmdsl.evaluate import ais, exact_log_z

RELU_HIDDEN = """
model relu_hidden(nv: int = 3, nh: int = 2)
visible v[nv]: binary
hidden  h[nh]: {unit}
param W[nv, nh] ~ normal(0, 0.5)
param a[nv] = 0
param b[nh] = 0
param log_g[nh] = 0
energy:
    curvature: exp(log_g[j]) * h[j]^2 / 2
    bias: -a[i]*v[i] - b[j]*h[j]
    interaction: -v[i]*W[i,j]*h[j]
"""

TRUNCEXP_VISIBLE = """
model interval_rbm(nv: int = 3, nh: int = 2)
visible v[nv]: {unit}
hidden  h[nh]: binary
param W[nv, nh] ~ normal(0, 0.5)
param a[nv] = 0
param b[nh] = 0
energy = -a[i]*v[i] - b[j]*h[j] - v[i]*W[i,j]*h[j]
"""


@pytest.fixture(params=["numpy", "cupy"])
def backend(request, monkeypatch):
    monkeypatch.setenv("PGMDSL_CUPY_STANDIN", "numpy")
    return request.param


def build(text, backend="numpy", unit=None, seed=0):
    source = text.format(unit=unit or ("relu" if "relu_hidden" in text else "truncexp"))
    c = pgmdsl.parse(source, filename="real_units.dgm").compile(backend=backend, dtype="float64", cache=False)
    rng = np.random.default_rng(seed)
    for param in c.model.params:
        c.params[param.name] = rng.normal(0, 0.8, param.shape)
    return c


def params(c):
    return {k: np.asarray(v, dtype=np.float64) for k, v in c.params.items()}


# ---- the relu-hidden RBM: h summed out by integrals over [0, inf) ----

def relu_free_energy(p, v):
    """F(v) = -a.v - sum_j log of the integral over h >= 0 of exp(f_j h - g_j h^2 / 2)."""
    total = -(v @ p["a"])
    for j in range(len(p["b"])):
        g, f = np.exp(p["log_g"][j]), p["b"][j] + v @ p["W"][:, j]
        total -= np.log(integrate.quad(lambda h: np.exp(f * h - g * h * h / 2), 0, np.inf, epsabs=0, epsrel=1e-13)[0])
    return total


def truncexp_free_energy(p, h):
    """F(h) with v summed out: -b.h - sum_i log of the integral over [0, 1] of exp(f_i v)."""
    total = -(h @ p["b"])
    for i in range(len(p["a"])):
        f = p["a"][i] + p["W"][i] @ h
        total -= np.log(integrate.quad(lambda x: np.exp(f * x), 0, 1, epsabs=0, epsrel=1e-13)[0])
    return total


def numerical_statistics(free_energy, p, state):
    """-dF/dtheta by central differences of the integrated free energy."""
    result = {}
    for name, value in p.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            up, down = {k: v.copy() for k, v in p.items()}, {k: v.copy() for k, v in p.items()}
            up[name][index] += 1e-5
            down[name][index] -= 1e-5
            grad[index] = -(free_energy(up, state) - free_energy(down, state)) / 2e-5
        result[name] = grad
    return result


def test_relu_free_energy_log_z_and_statistics_match_quadrature(backend):
    c = build(RELU_HIDDEN, backend)
    p = params(c)
    vs = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    expected = np.array([relu_free_energy(p, v) for v in vs])
    np.testing.assert_allclose(c.free_energy({"v": vs}), expected, rtol=0, atol=1e-9)
    assert exact_log_z(c) == pytest.approx(logsumexp(-expected), abs=1e-9)
    got = c.statistics({"v": vs[[3, 6]]}, np.array([1.0, 0.0]))
    numeric = numerical_statistics(relu_free_energy, p, vs[3])
    for name in numeric:
        np.testing.assert_allclose(np.broadcast_to(got[name], numeric[name].shape), numeric[name], atol=1e-6,
                                   err_msg=name)


def test_relu_conditional_is_the_truncated_normal(backend):
    c = build(RELU_HIDDEN, backend)
    p = params(c)
    v = np.array([[1.0, 0.0, 1.0]])
    g, f = np.exp(p["log_g"]), p["b"] + v[0] @ p["W"]
    laws = [stats.truncnorm(-f[j] / np.sqrt(g[j]), np.inf, f[j] / g[j], 1 / np.sqrt(g[j])) for j in range(2)]
    np.testing.assert_allclose(c.mean("h", {"v": v})[0], [law.mean() for law in laws], rtol=1e-10)
    draws = np.asarray(c.sample_layer("h", {"v": np.repeat(v, 50_000, axis=0)}, np.random.default_rng(1)))
    assert draws.min() >= 0
    for j, law in enumerate(laws):
        assert stats.kstest(draws[:, j], law.cdf).pvalue > 1e-3


def test_truncexp_free_energy_log_z_statistics_and_ais_match_quadrature(backend):
    c = build(TRUNCEXP_VISIBLE, backend)
    p = params(c)
    hs = np.array(list(itertools.product([0.0, 1.0], repeat=2)))
    truth = logsumexp([-truncexp_free_energy(p, h) for h in hs])
    assert exact_log_z(c) == pytest.approx(truth, abs=1e-9)
    h = np.array([[1.0, 0.0]])
    f = p["a"] + p["W"] @ h[0]
    means = [integrate.quad(lambda x: x * np.exp(fi * x), 0, 1)[0] / integrate.quad(lambda x: np.exp(fi * x), 0, 1)[0]
             for fi in f]
    np.testing.assert_allclose(c.mean("v", {"h": h})[0], means, rtol=1e-10)
    draws = np.asarray(c.sample_layer("v", {"h": np.repeat(h, 50_000, axis=0)}, np.random.default_rng(2)))
    assert draws.min() >= 0 and draws.max() <= 1
    for i, fi in enumerate(f):
        cdf = lambda x, fi=fi: np.expm1(fi * np.clip(x, 0, 1)) / np.expm1(fi)
        assert stats.kstest(draws[:, i], cdf).pvalue > 1e-3
    # v kept, h summed: the statistics are -dF(v)/dtheta, here checked against the free energy's own integral
    rows = np.random.default_rng(3).random((2, 3))

    def free_v(q, v):
        return -(v @ q["a"]) - np.sum(np.logaddexp(0, q["b"] + v @ q["W"]))

    got = c.statistics({"v": rows[:1]}, np.array([1.0]))
    numeric = numerical_statistics(free_v, p, rows[0])
    for name in numeric:
        np.testing.assert_allclose(np.broadcast_to(got[name], numeric[name].shape), numeric[name], atol=1e-6)
    data = np.random.default_rng(4).beta(2, 5, (400, 3))
    estimate = ais(c, data, runs=200, schedule=np.linspace(0, 1, 2001), progress=False)
    assert abs(estimate.log_z - truth) < 0.05


def test_truncexp_base_is_fitted_to_the_data_means():
    unit = units.get("truncexp")
    rows = np.random.default_rng(0).beta([1.0, 2.0, 8.0], [1.0, 6.0, 2.0], (20_000, 3))
    base = unit.fit_base(rows)
    draws = unit.base_sample(base, 200_000, np.random.default_rng(1))
    smoothing = 5 * 200  # pseudo-rows at 0 and at 1, five per 100 rows
    np.testing.assert_allclose(draws.mean(0), (rows.sum(0) + smoothing) / (len(rows) + 2 * smoothing), atol=5e-3)
    zero = unit.fit_base(np.zeros((1000, 1)))  # a unit the data keeps at 0: a finite, moderate field
    assert -30 < zero.field[0] < -10
    exact = sum(np.log(integrate.quad(lambda x: np.exp(f * x), 0, 1)[0]) for f in base.field)
    assert unit.base_log_partition(base) == pytest.approx(exact, abs=1e-10)
    assert np.all((unit.initial((4, 3), np.random.default_rng(0), np) >= 0)
                  & (unit.initial((4, 3), np.random.default_rng(0), np) <= 1))


@pytest.mark.parametrize("text, name", [(RELU_HIDDEN, "relu"), (TRUNCEXP_VISIBLE, "truncexp")])
def test_a_new_type_registered_under_a_second_name_gives_identical_results(text, name, monkeypatch):
    monkeypatch.setitem(units._REGISTRY, f"my_{name}", units.get(name))
    first, second = build(text, unit=name), build(text, unit=f"my_{name}")
    rows = {"v": np.random.default_rng(0).random((5, 3)).round() if name == "relu" else
            np.random.default_rng(0).random((5, 3))}
    np.testing.assert_array_equal(first.free_energy(rows), second.free_energy(rows))
    np.testing.assert_array_equal(first.sample(4, steps=3, seed=2)["h"], second.sample(4, steps=3, seed=2)["h"])


def test_data_outside_the_support_is_refused():
    c = build(TRUNCEXP_VISIBLE)
    with pytest.raises(pgmdsl.DSLError, match=r"truncexp units, which take values in \[0, 1\]"):
        c.fit(np.full((4, 3), 2.0), epochs=1)


def test_relu_units_coupled_to_each_other_are_refused_with_a_location():
    text = RELU_HIDDEN.format(unit="relu").replace("interaction:", "lateral: h[j]*L[j,k]*h[k]\n    interaction:")
    text = text.replace("param log_g", "param L[nh, nh] ~ normal(0, 0.1) : symmetric, zero_diagonal\nparam log_g")
    with pytest.raises(pgmdsl.DSLError, match=r"couples units of relu layer h") as error:
        pgmdsl.parse(text, filename="lateral.dgm").compile()
    assert "lateral.dgm:" in str(error.value)


def test_a_unit_type_whose_module_the_backend_lacks_is_refused(monkeypatch):
    import dataclasses

    needy = dataclasses.replace(units.get("relu"), name="needy", modules=("special", "quantum"))
    monkeypatch.setitem(units._REGISTRY, "needy", needy)
    with pytest.raises(pgmdsl.DSLError, match="needy units need the module 'quantum'"):
        build(RELU_HIDDEN, unit="needy")
