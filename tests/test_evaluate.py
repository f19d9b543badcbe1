"""Evaluation against brute force: exact log Z of every family, likelihoods, AIS, PL, bounds."""

import numpy as np
import pytest
from scipy.special import logsumexp

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.evaluate import (ais, conditional_log_likelihood, exact_log_likelihood, exact_log_z, log_likelihood, lower_bound,
                             pseudo_log_likelihood)
from pgmdsl.runtime.initialize import constrain

import exact

DISCRETE = {
    "rbm": dict(nv=4, nh=3),
    "bm": dict(n=3, nh=2),
    "dbm": dict(nv=3, n1=3, n2=2),
    "class_rbm": dict(nx=3, ny=3, nh=2),
    "conv_rbm": dict(C=1, NV=4, K=2, NW=3, pool=2),
    "pooled_pair": dict(NV=3, K=1, N=4, pool=2, M=2),  # terms on a pooling layer (tests/models)
}
CONTINUOUS = {
    "gbrbm": dict(nv=2, nh=2),
    "mcrbm": dict(nv=2, nm=1, nc=2),
    "crbm": dict(nv=2, nh=2, order=1),
}


def compiled(name, sizes, scale=0.7, seed=0):
    model = pgmdsl.load(exact.TEST_MODELS.get(name, name), **sizes)
    c = model.compile(dtype="float64")
    rng = np.random.default_rng(seed)
    for param in model.params:
        c.params[param.name] = constrain(param, rng.normal(0, scale, param.shape))
    return c


def every_state(c, names):
    return exact.product_state({n: exact.layer_states(c.layers[n], _pool(c, n)) for n in names})


def _pool(c, name):
    layer = c.model.layer(name)
    return layer.pooling.block if layer.pooling else None


def random_layers(c):
    return [n for n, info in c.layers.items() if info["role"] in ("visible", "hidden")]


@pytest.mark.parametrize("name", DISCRETE)
def test_exact_log_z_of_discrete_models_is_brute_force(name):
    c = compiled(name, DISCRETE[name])
    state = every_state(c, random_layers(c))
    expected = logsumexp(-exact.ENERGIES[name]({k: np.asarray(v) for k, v in c.params.items()}, state))
    assert abs(exact_log_z(c) - expected) < 1e-9


def integrated_log_z(c, name, fixed=None):
    """log of the sum over discrete layers of the integral over the real layer (2 units), by quadrature.

    A 200 x 200 Gauss-Legendre product rule on [-16, 16]^2: the integrands are smooth
    and negligible at the edges, so it converges far below the tolerance.
    """
    params = {k: np.asarray(v) for k, v in c.params.items()}
    real = next(n for n, info in c.layers.items() if info["unit"] == "gaussian")
    discrete = [n for n in random_layers(c) if n != real]
    states = every_state(c, discrete)
    count = len(next(iter(states.values())))
    nodes, weights = np.polynomial.legendre.leggauss(200)
    nodes, weights = 16 * nodes, 16 * weights
    grid = np.stack(np.meshgrid(nodes, nodes, indexing="ij"), -1).reshape(-1, 2)
    grid_weights = np.outer(weights, weights).ravel()
    logs = []
    for row in range(count):
        base = {k: np.repeat(v[row:row + 1], len(grid), axis=0) for k, v in states.items()}
        base.update({k: np.repeat(v, len(grid), axis=0) for k, v in (fixed or {}).items()})
        energies = exact.ENERGIES[name](params, {**base, real: grid})
        logs.append(logsumexp(-energies, b=grid_weights))
    return logsumexp(logs)


@pytest.mark.parametrize("name", CONTINUOUS)
def test_exact_log_z_of_gaussian_models_matches_quadrature(name):
    c = compiled(name, CONTINUOUS[name], scale=0.5)
    if name == "crbm":
        past = np.array([[[0.3, -1.2]], [[1.0, 0.4]]])
        got = exact_log_z(c, inputs={"past": past})
        expected = [integrated_log_z(c, name, {"past": past[r:r + 1]}) for r in range(2)]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-8)
    else:
        assert abs(exact_log_z(c) - integrated_log_z(c, name)) < 1e-8


def test_conditional_models_need_their_inputs():
    c = compiled("crbm", CONTINUOUS["crbm"])
    with pytest.raises(DSLError, match="conditional on past: give inputs="):
        exact_log_z(c)


def test_too_large_models_are_refused():
    c = pgmdsl.load("rbm", nv=40, nh=40).compile()
    with pytest.raises(DSLError, match=r"needs 1.1e\+12 states \(2\^40.0\).*use ais"):
        exact_log_z(c)


@pytest.mark.parametrize("name", ["rbm", "dbm", "class_rbm"])
def test_log_likelihood_is_brute_force(name):
    c = compiled(name, DISCRETE[name])
    params = {k: np.asarray(v) for k, v in c.params.items()}
    visible = [n for n, info in c.layers.items() if info["role"] == "visible"]
    hidden = [n for n in random_layers(c) if n not in visible]
    data = every_state(c, visible)
    data = {k: v[:5] for k, v in data.items()}
    log_z = exact_log_z(c)
    expected = []
    for row in range(5):
        h = every_state(c, hidden)
        count = len(next(iter(h.values())))
        state = {**{k: np.repeat(v[row:row + 1], count, axis=0) for k, v in data.items()}, **h}
        expected.append(logsumexp(-exact.ENERGIES[name](params, state)) - log_z)
    np.testing.assert_allclose(log_likelihood(c, data, log_z), expected, rtol=0, atol=1e-9)


def test_pseudo_log_likelihood_is_the_sum_of_exact_unit_conditionals():
    c = compiled("rbm", dict(nv=4, nh=3))
    params = {k: np.asarray(v) for k, v in c.params.items()}
    data = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], float)
    hidden = exact.layer_states(c.layers["h"])

    def log_marginal(v):
        state = {"v": np.repeat(v[None], len(hidden), 0), "h": hidden}
        return logsumexp(-exact.rbm(params, state))

    expected = []
    for v in data:
        total = 0.0
        for i in range(4):
            flipped = v.copy()
            flipped[i] = 1 - flipped[i]
            total += log_marginal(v) - np.logaddexp(log_marginal(v), log_marginal(flipped))
        expected.append(total)
    np.testing.assert_allclose(pseudo_log_likelihood(c, data), expected, rtol=0, atol=1e-9)


def test_mean_field_bound_is_exact_for_an_rbm_and_a_bound_for_a_dbm():
    rbm = compiled("rbm", dict(nv=4, nh=3))
    data = exact.layer_states(rbm.layers["v"])[:6]
    log_z = exact_log_z(rbm)
    np.testing.assert_allclose(lower_bound(rbm, data, log_z), log_likelihood(rbm, data, log_z), rtol=0, atol=1e-9)
    dbm = compiled("dbm", DISCRETE["dbm"])
    data = exact.layer_states(dbm.layers["v"])
    log_z = exact_log_z(dbm)
    bound, exact_ll = lower_bound(dbm, data, log_z), log_likelihood(dbm, data, log_z)
    assert np.all(bound <= exact_ll + 1e-12) and np.all(bound > exact_ll - 1.0)


@pytest.mark.parametrize("name, sizes", [("rbm", dict(nv=8, nh=6)), ("dbm", dict(nv=6, n1=4, n2=3)),
                                         ("class_rbm", dict(nx=5, ny=3, nh=4))])
def test_ais_agrees_with_exact_log_z(name, sizes):
    c = compiled(name, sizes, scale=0.8)
    rng = np.random.default_rng(1)
    visible = [n for n, info in c.layers.items() if info["role"] == "visible"]
    data = {n: exact.layer_states(c.layers[n])[rng.integers(0, 2 ** 3, 200) % len(exact.layer_states(c.layers[n]))]
            for n in visible}
    estimate = ais(c, data, runs=100, schedule=np.linspace(0, 1, 2001), progress=False)
    truth = exact_log_z(c)
    assert abs(estimate.log_z - truth) < 0.1
    assert estimate.log_z_low <= estimate.log_z <= estimate.log_z_high
    assert "log Z =" in str(estimate)


def test_ais_refuses_bad_schedules():
    c = compiled("rbm", dict(nv=4, nh=3))
    with pytest.raises(DSLError, match="rises strictly from 0 to 1"):
        ais(c, np.zeros((3, 4)), schedule=[0, 0.5, 0.4, 1])


def relu_log_z_by_quadrature(c):
    """relu_rbm: binary v enumerated, each rectified hidden unit integrated over [0, inf) (independent given v)."""
    from scipy import integrate

    p = {k: np.asarray(v) for k, v in c.params.items()}
    logs = []
    for v in exact.layer_states(c.layers["v"]):
        log = v @ p["a"]
        for j in range(len(p["b"])):
            g, f = np.exp(p["log_gamma"][j]), p["b"][j] + v @ p["W"][:, j]
            log += np.log(integrate.quad(lambda h: np.exp(f * h - g * h * h / 2), 0, np.inf, epsrel=1e-12)[0])
        logs.append(log)
    return logsumexp(logs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ais_is_within_005_nats_on_real_valued_models(seed):
    """GB-RBM (Gaussian base fitted to the data), mcRBM (joint Gaussian x) and rectified hidden units
    (summed out with a standard base precision), each against an exact log Z checked by quadrature."""
    rng = np.random.default_rng(seed)
    cases = [(compiled("gbrbm", dict(nv=3, nh=4), scale=0.8, seed=seed), rng.normal(0.5, 2.0, (400, 3))),
             (compiled("mcrbm", dict(nv=3, nm=2, nc=2), scale=0.8, seed=seed), rng.normal(0, 1.0, (400, 3))),
             (compiled("relu_rbm", dict(nv=3, nh=2), scale=0.8, seed=seed), (rng.random((400, 3)) < 0.3) * 1.0)]
    for c, data in cases:
        estimate = ais(c, data, runs=200, schedule=np.linspace(0, 1, 2001), seed=seed, progress=False)
        assert abs(estimate.log_z - exact_log_z(c)) < 0.05, c.model.name
    c = cases[2][0]
    assert abs(exact_log_z(c) - relu_log_z_by_quadrature(c)) < 1e-8


def test_conditional_log_likelihood_by_enumeration_and_by_ais_per_input_row():
    """A CRBM: log Z(past) by quadrature for each past row; AIS per row (runs batched) within 0.05 nats of it,
    and log p(v | past) the same whichever way Z(past) was found."""
    c = compiled("crbm", dict(nv=2, nh=3, order=1), scale=0.7)
    rng = np.random.default_rng(5)
    past = rng.normal(0, 1, (3, 1, 2))
    rows = {"past": past, "v": rng.normal(0, 1, (3, 2))}
    truth = [integrated_log_z(c, "crbm", {"past": past[r:r + 1]}) for r in range(3)]
    estimate = ais(c, {"v": rng.normal(0, 1, (300, 2))}, inputs={"past": past}, runs=200,
                   schedule=np.linspace(0, 1, 2001), progress=False)
    assert estimate.log_z.shape == (3,) and estimate.log_weights.shape == (3, 200)
    assert np.all(np.abs(estimate.log_z - truth) < 0.05)
    assert "for 3 input rows" in str(estimate)
    exact_rows = conditional_log_likelihood(c, rows)
    by_ais = conditional_log_likelihood(c, rows, max_states=1, runs=200, schedule=np.linspace(0, 1, 2001),
                                        progress=False)
    energies = -c.free_energy(rows)
    np.testing.assert_allclose(exact_rows, energies - np.array(truth), atol=1e-8)
    assert np.all(np.abs(by_ais - exact_rows) < 0.05)
    with pytest.raises(DSLError, match="give inputs="):
        ais(c, {"v": rows["v"]}, schedule=[0, 1])
    with pytest.raises(DSLError, match="must hold the input layers"):
        conditional_log_likelihood(c, {"v": rows["v"]})
    with pytest.raises(DSLError, match="no input layers"):
        conditional_log_likelihood(compiled("rbm", dict(nv=4, nh=3)), {"v": np.zeros((2, 4))})


def test_ais_anneals_rectified_visible_units_from_a_fitted_base():
    """relu visible units kept (a base fitted to the data's moments, truncated at 0), binary hidden summed."""
    from scipy import integrate

    c = pgmdsl.parse("""model relu_visible(nv: int = 3, nh: int = 2)
visible v[nv]: relu
hidden  h[nh]: binary
param W[nv, nh] ~ normal(0, 0.5)
param a[nv] = 0
param b[nh] = 0
energy = v[i]^2 / 2 - a[i]*v[i] - b[j]*h[j] - v[i]*W[i,j]*h[j]""", filename="relu_visible.dgm").compile(dtype="float64")
    rng = np.random.default_rng(3)
    for param in c.model.params:
        c.params[param.name] = rng.normal(0, 0.8, param.shape)
    p = {k: np.asarray(v) for k, v in c.params.items()}
    logs = []  # the visible units are independent given h: one integral each
    for h in exact.layer_states(c.layers["h"]):
        log = h @ p["b"]
        for i in range(3):
            f = p["a"][i] + p["W"][i] @ h
            log += np.log(integrate.quad(lambda x: np.exp(f * x - x * x / 2), 0, np.inf, epsrel=1e-12)[0])
        logs.append(log)
    truth = logsumexp(logs)
    assert abs(exact_log_z(c) - truth) < 1e-8
    estimate = ais(c, np.abs(rng.normal(0.5, 1.0, (400, 3))), runs=200, schedule=np.linspace(0, 1, 2001),
                   progress=False)
    assert abs(estimate.log_z - truth) < 0.05


def test_fit_monitors_exact_and_pseudo_likelihood():
    c = pgmdsl.load("rbm", nv=6, nh=3).compile(dtype="float64")
    data = np.random.default_rng(0).integers(0, 2, (40, 6)).astype(float)
    history = c.fit(data[:30], epochs=2, batch_size=10, verbose=0, validation=data[30:],
                    monitor={"pseudo_log_likelihood": pseudo_log_likelihood, "log_likelihood": exact_log_likelihood})
    row = history[-1]
    log_z = exact_log_z(c)
    assert row["train_log_likelihood"] == pytest.approx(np.mean(log_likelihood(c, data[:30], log_z)))
    assert row["validation_pseudo_log_likelihood"] == pytest.approx(np.mean(pseudo_log_likelihood(c, data[30:])))
    with pytest.raises(DSLError, match="unknown monitor 'nll'"):
        c.fit(data, monitor="nll")


def test_entropies_of_each_unit_type_match_enumeration():
    from pgmdsl.evaluate.bound import entropy

    c = compiled("conv_rbm", DISCRETE["conv_rbm"])
    rng = np.random.default_rng(2)
    v = rng.integers(0, 2, (1, 1, 4, 4)).astype(float)
    mean = np.asarray(c.mean("h", {"v": v}))
    states = exact.layer_states(c.layers["h"], (2, 2))
    weights = exact.log_normalise(-exact.conv_rbm({k: np.asarray(x) for k, x in c.params.items()},
                                                  {"v": np.repeat(v, len(states), 0), "h": states}))
    assert entropy(c, "h", mean)[0] == pytest.approx(-np.sum(weights * np.log(weights)), abs=1e-9)
    y = compiled("class_rbm", DISCRETE["class_rbm"])
    probabilities = np.array([[0.2, 0.3, 0.5]])
    assert entropy(y, "y", probabilities)[0] == pytest.approx(-np.sum(probabilities * np.log(probabilities)))


def test_default_schedule_and_free_energy_gap():
    from pgmdsl.evaluate import default_schedule, free_energy_gap

    betas = default_schedule()
    assert len(betas) - 1 == 14500 and betas[0] == 0 and betas[-1] == 1
    assert np.all(np.diff(betas) > 0) and np.isclose(np.diff(betas)[-1], 1e-5)
    c = compiled("rbm", DISCRETE["rbm"])
    train, held = exact.layer_states(c.layers["v"])[:8], exact.layer_states(c.layers["v"])[8:]
    expected = np.mean(c.free_energy({"v": held})) - np.mean(c.free_energy({"v": train}))
    assert free_energy_gap(c, train, held) == pytest.approx(expected)


def test_logsumexp_is_stable():
    from pgmdsl.runtime.numerics import logsumexp as ours

    values = np.array([[1000.0, 1000.0], [-np.inf, -np.inf], [0.0, np.log(3.0)]])
    np.testing.assert_allclose(ours(values, axis=1), [1000 + np.log(2), -np.inf, np.log(4.0)])
    assert ours(np.array([-1000.0, -1000.0])) == pytest.approx(-1000 + np.log(2))
    np.testing.assert_allclose(ours(values[2:], axis=1, keepdims=True), [[np.log(4.0)]])


def test_effective_sample_size_is_the_direct_formula_and_stable_at_extreme_log_weights():
    from pgmdsl.evaluate import effective_sample_size

    log_w = np.random.default_rng(0).normal(0, 2, 50)
    w = np.exp(log_w)
    assert effective_sample_size(log_w) == pytest.approx(w.sum() ** 2 / (w ** 2).sum(), rel=1e-12)
    assert effective_sample_size(log_w + 800.0) == pytest.approx(effective_sample_size(log_w), rel=1e-12)  # exp overflows
    assert effective_sample_size(log_w - 800.0) == pytest.approx(effective_sample_size(log_w), rel=1e-12)  # underflows
    assert effective_sample_size(np.zeros(7)) == pytest.approx(7.0)  # even weights: every run counts
    assert effective_sample_size([0.0, -1000.0, -1000.0]) == pytest.approx(1.0)  # one run dominates
    rows = np.stack([log_w, np.zeros(50)])
    np.testing.assert_allclose(effective_sample_size(rows), [effective_sample_size(log_w), 50.0])


def test_an_ais_estimate_keeps_its_log_weights_and_their_effective_sample_size():
    c = compiled("rbm", dict(nv=4, nh=3))
    estimate = ais(c, np.eye(4), runs=20, schedule=np.linspace(0, 1, 51), progress=False)
    assert estimate.log_weights.shape == (20,)
    w = np.exp(estimate.log_weights - estimate.log_weights.max())
    assert estimate.effective_sample_size == pytest.approx(w.sum() ** 2 / (w ** 2).sum())
    assert 1.0 <= estimate.effective_sample_size <= 20.0
    assert "effective sample size" in str(estimate)
