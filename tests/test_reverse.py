"""RAISE against exact answers: the annealing model's likelihood by enumeration, and convergence to log p(v)."""

import numpy as np
import pytest
from scipy.special import expit

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.evaluate import exact_log_z, log_likelihood, raise_log_likelihood
from pgmdsl.evaluate.ais import base_rates
from rbms import random_rbm

import exact


def test_one_step_weights_average_to_the_annealing_models_probability():
    """With schedule (0, 1), p_ann(v) = sum over v0 of p_0(v0) T(v | v0), T a Gibbs sweep v0 -> h -> v at the
    model: enumerated here, and RAISE's importance weights must average to it (they are unbiased)."""
    c = random_rbm(nv=3, nh=2, scale=1.0)
    W, a, b = (np.asarray(c.params[k]) for k in "Wab")
    data = np.array([[1.0, 0, 1], [0, 0, 0], [1, 1, 0]])
    field = base_rates(c, {"v": data})["v"]
    vs, hs = exact.layer_states(c.layers["v"]), exact.layer_states(c.layers["h"])

    def bernoulli(p, x):
        return np.prod(np.where(x == 1, p, 1 - p), axis=-1)

    p0 = bernoulli(expit(field), vs)
    transition = np.array([[sum(bernoulli(expit(v0 @ W + b), h) * bernoulli(expit(W @ h + a), v) for h in hs)
                            for v in vs] for v0 in vs])  # transition[v0, v]
    p_ann = p0 @ transition
    estimate = raise_log_likelihood(c, data, runs=40000, schedule=[0.0, 1.0], seed=3, progress=False)
    for row, v in enumerate(data):
        expected = p_ann[np.all(vs == v, axis=1)][0]
        weights = np.exp(estimate.log_weights[row])
        standard_error = weights.std() / np.sqrt(len(weights))
        assert abs(weights.mean() - expected) < 4 * standard_error, (row, weights.mean(), expected)


@pytest.mark.parametrize("name, sizes", [("rbm", dict(nv=8, nh=5)), ("class_rbm", dict(nx=5, ny=3, nh=4))])
def test_raise_converges_to_the_exact_log_likelihood(name, sizes):
    c = pgmdsl.load(name, **sizes).compile(dtype="float64")
    rng = np.random.default_rng(1)
    for param in c.model.params:
        c.params[param.name] = rng.normal(0, 1.0, param.shape)
    rows = 6
    data = {n: exact.layer_states(info)[rng.integers(0, len(exact.layer_states(info)), rows)]
            for n, info in c.layers.items() if info["role"] == "visible"}
    truth = np.asarray(log_likelihood(c, data, exact_log_z(c)))
    estimate = raise_log_likelihood(c, data, runs=100, schedule=np.linspace(0, 1, 1001), seed=0, progress=False)
    assert estimate.log_weights.shape == (rows, 100) and estimate.distributions == 1000
    np.testing.assert_allclose(estimate.log_likelihood, truth, rtol=0, atol=0.06)
    assert abs(estimate.mean - truth.mean()) < 0.02
    assert "stochastic lower bound" in str(estimate)


def test_what_raise_refuses():
    dbm = pgmdsl.load("dbm", nv=3, n1=2, n2=2).compile(dtype="float64")
    with pytest.raises(DSLError, match="keeps v, h2"):
        raise_log_likelihood(dbm, np.zeros((2, 3)), runs=2, schedule=[0, 1], progress=False)
    with pytest.raises(DSLError, match="rises strictly from 0 to 1"):
        raise_log_likelihood(random_rbm(nv=3, nh=2, scale=1.0), np.zeros((2, 3)), runs=2, schedule=[0, 0.5], progress=False)


def test_raise_brackets_the_exact_log_likelihood_of_a_gbrbm():
    """Real-valued rows: RAISE from the fitted Gaussian base is a stochastic lower bound close to log p(v)."""
    c = pgmdsl.load("gbrbm", nv=2, nh=3).compile(dtype="float64")
    rng = np.random.default_rng(4)
    for param in c.model.params:
        c.params[param.name] = rng.normal(0, 0.8, param.shape)
    rows = rng.normal(0, 1.5, (4, 2))
    truth = log_likelihood(c, rows, exact_log_z(c))
    estimate = raise_log_likelihood(c, rows, base=rng.normal(0, 1.5, (300, 2)), runs=100,
                                    schedule=np.linspace(0, 1, 1001), seed=1, progress=False)
    assert np.all(estimate.log_likelihood < truth + 0.02)
    assert np.all(estimate.log_likelihood > truth - 0.05)
