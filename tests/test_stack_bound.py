"""A deep belief network's log-likelihood and variational bound against brute force written here.

Every path of hidden states is enumerated with explicit sigmoid, softplus and
binomial formulas (no package function): p(v) sums p(v|h1) p(h1|h2) ...
p*_top(h_{L-1}) / Z_top over all paths, and the bound averages its integrand
under q, the up pass, path by path.
"""

import itertools

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.evaluate import (ais, exact_log_z, exact_stack_log_likelihood, exact_stack_lower_bound, lower_bound,
                             raise_log_likelihood, stack_lower_bound)

COUNTS = """
model counts(nv: int = 3, nh: int = 2)
visible v[nv]: binomial(3)
hidden  h[nh]: binary
param W[nv, nh] ~ normal(0, 0.01)
param a[nv] = 0
param b[nh] = 0
energy = -a[i]*v[i] - b[j]*h[j] - v[i]*W[i,j]*h[j]

model counts_dbn(nv: int = 3, n1: int = 3, n2: int = 2)
stack:
    counts(nv, n1)
    rbm(n1, n2)
"""
TWO_LEVELS = """
model two_levels(nv: int = 4, n1: int = 3, n2: int = 2)
stack:
    rbm(nv, n1)
    rbm(n1, n2)
"""
RBM_SOURCE = """
model rbm(nv: int = 3, nh: int = 2)
visible v[nv]: binary
hidden  h[nh]: binary
param W[nv, nh] ~ normal(0, 0.01)
param a[nv] = 0
param b[nh] = 0
energy = -a[i]*v[i] - b[j]*h[j] - v[i]*W[i,j]*h[j]
"""


def log_sigmoid(x):
    return -np.logaddexp(0, -x)


def binary_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def random_stack(seed=0, scale=1.0, **sizes):
    """dbn.dgm's three levels given n3, else a two-level stack of rbm.dgm's model."""
    model = pgmdsl.load("dbn", **sizes) if "n3" in sizes else pgmdsl.parse(RBM_SOURCE + TWO_LEVELS, "two_levels.dgm", **sizes)
    stack = model.compile(dtype="float64", seed=0)
    rng = np.random.default_rng(seed)
    for level in stack.levels:
        for name, value in level.params.items():
            level.params[name] = rng.normal(0, scale, np.shape(value))
    return stack


def arrays(level):
    return (np.asarray(level.params[k]) for k in ("W", "a", "b"))


class Brute:
    """A DBN of binary RBM levels (the bottom one's visible units binomial(trials)), by path enumeration."""

    def __init__(self, stack, recognition=None, trials=1):
        self.levels = [tuple(arrays(level)) for level in stack.levels]
        self.recognition = recognition or [level[:] for level in self.levels]
        self.trials = trials
        W, a, b = self.levels[-1]
        self.log_z_top = logsumexp([self.log_top(x) for x in binary_states(len(a))])

    def log_top(self, x):
        W, a, b = self.levels[-1]
        return x @ a + np.sum(np.logaddexp(0, b + x @ W))

    def log_down(self, number, x, h):
        """log p(x | h) of level `number`: Bernoulli (or, at the bottom, binomial) units of logit a + W h."""
        W, a, _ = self.levels[number]
        logit = a + W @ h
        n = self.trials if number == 0 else 1
        return np.sum(gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)
                      + x * log_sigmoid(logit) + (n - x) * log_sigmoid(-logit))

    def log_up(self, number, x, h):
        W, _, b = self.recognition[number]
        logit = b + x @ W
        return np.sum(h * log_sigmoid(logit) + (1 - h) * log_sigmoid(-logit))

    def paths(self):
        return itertools.product(*(binary_states(len(a)) for _, a, _ in self.levels[1:]))

    def integrand(self, v, path):
        """log p(v, path) unnormalised at the top (Z_top left out) and log q(path | v)."""
        layers = (v,) + tuple(path)
        log_p = sum(self.log_down(k, layers[k], layers[k + 1]) for k in range(len(path))) + self.log_top(layers[-1])
        log_q = sum(self.log_up(k, layers[k], layers[k + 1]) for k in range(len(path)))
        return log_p, log_q

    def log_likelihood(self, v):
        return logsumexp([self.integrand(v, path)[0] for path in self.paths()]) - self.log_z_top

    def bound(self, v):
        terms = [self.integrand(v, path) for path in self.paths()]
        return sum(np.exp(q) * (p - q) for p, q in terms) - self.log_z_top


def rows(n, count=6, seed=1, trials=1):
    return np.random.default_rng(seed).integers(0, trials + 1, (count, n)).astype(float)


SIZES = [dict(nv=4, n1=3, n2=2, n3=2), dict(nv=4, n1=3, n2=2)]  # 3 and 2 levels


@pytest.mark.parametrize("sizes", SIZES, ids=["3-level", "2-level"])
def test_exact_log_likelihood_and_bound_against_path_enumeration(sizes):
    stack = random_stack(**sizes)
    brute = Brute(stack)
    data = rows(sizes["nv"])
    assert exact_log_z(stack.levels[-1]) == pytest.approx(brute.log_z_top, abs=1e-10)
    likelihood = exact_stack_log_likelihood(stack, data)
    np.testing.assert_allclose(likelihood, [brute.log_likelihood(v) for v in data], atol=1e-10, rtol=0)
    bound = exact_stack_lower_bound(stack, data, brute.log_z_top)
    np.testing.assert_allclose(bound, [brute.bound(v) for v in data], atol=1e-10, rtol=0)
    assert np.all(bound <= likelihood + 1e-12)
    every = binary_states(sizes["nv"])  # p(v) is normalised: the check needs no brute force
    assert logsumexp(exact_stack_log_likelihood(stack, every, brute.log_z_top)) == pytest.approx(0, abs=1e-10)


def test_binomial_bottom_level_normalises_from_the_energy():
    """p(v | h1) of counts is binomial: its measure C(n, v) comes through the level's energy and free energy."""
    stack = pgmdsl.parse(RBM_SOURCE + COUNTS, "counts_dbn.dgm").compile(dtype="float64")
    rng = np.random.default_rng(3)
    for level in stack.levels:
        for name, value in level.params.items():
            level.params[name] = rng.normal(0, 0.5, np.shape(value))
    brute = Brute(stack, trials=3)
    data = rows(3, trials=3)
    np.testing.assert_allclose(exact_stack_log_likelihood(stack, data), [brute.log_likelihood(v) for v in data],
                               atol=1e-10, rtol=0)
    np.testing.assert_allclose(exact_stack_lower_bound(stack, data, brute.log_z_top), [brute.bound(v) for v in data],
                               atol=1e-10, rtol=0)



def test_monte_carlo_bound_is_unbiased():
    stack = random_stack(seed=2, **SIZES[0])
    brute = Brute(stack)
    data = rows(4, count=5, seed=4)
    exact = [brute.bound(v) for v in data]
    estimate, error = stack_lower_bound(stack, data, brute.log_z_top, samples=4000, seed=5, standard_error=True)
    assert np.all(error > 0)
    assert np.all(np.abs(estimate - exact) < 4 * error)
    again = stack_lower_bound(stack, data, brute.log_z_top, samples=4000, seed=5)
    np.testing.assert_array_equal(again, estimate)  # the draws follow the seed


def test_bound_is_tight_when_the_recognition_is_the_posterior():
    """With one unit in h1 every posterior factorises; its logit is linear in v, so an untied up pass matches it
    exactly: the bound equals log p(v), and every draw of the Monte Carlo estimate gives the same value."""
    stack = random_stack(seed=6, nv=4, n1=1, n2=3)
    brute = Brute(stack)
    W, a, _ = brute.levels[0]
    prior = brute.log_top(np.ones(1)) - brute.log_top(np.zeros(1))
    bias = prior - np.sum(np.logaddexp(0, a + W[:, 0]) - np.logaddexp(0, a))  # log p(v | 1) - log p(v | 0) - W v
    stack.recognition[0] = {"W": W.copy(), "a": a.copy(), "b": np.array([bias])}
    brute = Brute(stack, recognition=[(W, a, np.array([bias])), brute.levels[1]])
    data = rows(4)
    truth = [brute.log_likelihood(v) for v in data]
    np.testing.assert_allclose(exact_stack_lower_bound(stack, data, brute.log_z_top), truth, atol=1e-10, rtol=0)
    estimate, error = stack_lower_bound(stack, data, brute.log_z_top, samples=8, standard_error=True)
    np.testing.assert_allclose(estimate, truth, atol=1e-10, rtol=0)
    np.testing.assert_allclose(error, 0, atol=1e-10)
    tied = exact_stack_lower_bound(random_stack(seed=6, nv=4, n1=1, n2=3), data, brute.log_z_top)
    assert np.all(tied < np.array(truth))  # the tied up pass is not the posterior here


def test_ais_of_a_stack_anneals_its_top_level():
    stack = random_stack(seed=7, **SIZES[0])
    brute = Brute(stack)
    estimate = ais(stack, rows(4, count=20), runs=100, schedule=np.linspace(0, 1, 1001), progress=False)
    assert estimate.log_z == pytest.approx(brute.log_z_top, abs=0.05)


def test_lower_bound_dispatches_and_raise_refuses_a_stack():
    stack = random_stack(seed=8, **SIZES[1])
    brute = Brute(stack)
    data = rows(4, count=4)
    bound = lower_bound(stack, data, brute.log_z_top)
    np.testing.assert_array_equal(bound, stack_lower_bound(stack, data, brute.log_z_top))
    _, error = stack_lower_bound(stack, data, brute.log_z_top, standard_error=True)
    assert np.all(np.abs(bound - [brute.bound(v) for v in data]) < 5 * error)
    with pytest.raises(DSLError, match="stack_lower_bound"):
        raise_log_likelihood(stack, data, runs=2, schedule=np.linspace(0, 1, 5), progress=False)


def test_refusals():
    stack = random_stack(**SIZES[1])
    data = rows(4)
    with pytest.raises(DSLError, match="use lower_bound"):
        stack_lower_bound(stack.levels[0], data, 0.0)
    for samples in (0, 2.5, True):
        with pytest.raises(DSLError, match="samples must be a positive integer"):
            stack_lower_bound(stack, data, 0.0, samples=samples)
    with pytest.raises(DSLError, match="samples >= 2"):
        stack_lower_bound(stack, data, 0.0, samples=1, standard_error=True)
    with pytest.raises(DSLError, match="no rows"):
        exact_stack_lower_bound(stack, data[:0], 0.0)
    with pytest.raises(DSLError, match="binary units"):
        stack_lower_bound(stack, 2 * data, 0.0)
    with pytest.raises(DSLError, match="use stack_lower_bound"):
        exact_stack_log_likelihood(pgmdsl.load("dbn", nv=2, n1=11, n2=10, n3=1).compile(dtype="float64"),
                                   rows(2), 0.0)
    lateral = COUNTS.replace("counts", "lateral").replace("binomial(3)", "binary").replace(
        "param a[nv] = 0", "param a[nv] = 0\nparam L[nv, nv] ~ normal(0, 0.01) : symmetric, zero_diagonal").replace(
        "- v[i]*W[i,j]*h[j]", "- v[i]*W[i,j]*h[j] - v[i]*L[i,k]*v[k]")
    coupled = pgmdsl.parse(RBM_SOURCE + lateral, "lateral_dbn.dgm").compile(dtype="float64")
    with pytest.raises(DSLError, match="cannot be normalised"):
        exact_stack_log_likelihood(coupled, rows(3), 0.0)
