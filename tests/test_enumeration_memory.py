"""Enumeration in chunks of rows x states: the same sums under any memory budget, and never more memory than it.

Brute force here enumerates every state of every layer with numpy from
energies written by hand, independent of the compiler's free energies and
of runtime.states' counting.
"""

import itertools
import tracemalloc

import numpy as np
import pytest
from scipy.special import logsumexp

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.evaluate.exact import exact_log_z, log_likelihood

BUDGETS = [None, 1 << 20, 20_000, 4_000]  # the default, then down to one row x a state or two per chunk


def _all_states(sizes: dict) -> dict:
    """Every binary (or one-hot, for tuples) configuration of the layers, rows aligned across layers."""
    per_layer = {}
    for name, spec in sizes.items():
        if isinstance(spec, tuple):  # ("onehot", K)
            per_layer[name] = list(np.eye(spec[1]))
        else:
            per_layer[name] = [np.array(bits, dtype=float) for bits in itertools.product((0, 1), repeat=spec)]
    names = list(per_layer)
    combos = list(itertools.product(*(per_layer[n] for n in names)))
    return {n: np.array([c[k] for c in combos]) for k, n in enumerate(names)}


def _params(c):
    return {k: np.asarray(v, dtype=np.float64) for k, v in c.params.items()}


def _randomised(name, seed=0, **sizes):
    c = pgmdsl.load(name, **sizes).compile(dtype="float64")
    rng = np.random.default_rng(seed)
    for k, v in c.params.items():
        c.params[k] = rng.normal(0, 0.5, np.shape(v))
    return c


@pytest.mark.parametrize("memory", BUDGETS)
def test_dbm_matches_brute_force(memory):
    c = _randomised("dbm", nv=6, n1=4, n2=3)
    every = _all_states({"v": 6, "h1": 4, "h2": 3})
    p = _params(c)
    energy = (-(every["v"] @ p["a"]) - every["h1"] @ p["b1"] - every["h2"] @ p["b2"]
              - np.einsum("bi,ij,bj->b", every["v"], p["W1"], every["h1"])
              - np.einsum("bj,jk,bk->b", every["h1"], p["W2"], every["h2"]))
    log_z = logsumexp(-energy)
    assert exact_log_z(c, memory=memory) == pytest.approx(log_z, abs=1e-12)
    rows = np.random.default_rng(1).integers(0, 2, (7, 6)).astype(float)
    expected = [logsumexp(-energy[np.all(every["v"] == row, axis=1)]) - log_z for row in rows]
    np.testing.assert_allclose(log_likelihood(c, rows, log_z, memory=memory), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("memory", BUDGETS)
def test_rbm_and_class_rbm_match_brute_force(memory):
    c = _randomised("rbm", nv=5, nh=4)
    p, every = _params(c), _all_states({"v": 5, "h": 4})
    energy = -(every["v"] @ p["a"]) - every["h"] @ p["b"] - np.einsum("bi,ij,bj->b", every["v"], p["W"], every["h"])
    log_z = logsumexp(-energy)
    assert exact_log_z(c, memory=memory) == pytest.approx(log_z, abs=1e-12)
    rows = np.random.default_rng(2).integers(0, 2, (9, 5)).astype(float)
    expected = [logsumexp(-energy[np.all(every["v"] == row, axis=1)]) - log_z for row in rows]
    np.testing.assert_allclose(log_likelihood(c, rows, log_z, memory=memory), expected, rtol=0, atol=1e-12)

    c = _randomised("class_rbm", nx=3, ny=3, nh=2)
    p, every = _params(c), _all_states({"x": 3, "y": ("onehot", 3), "h": 2})
    energy = (-(every["x"] @ p["a"]) - every["y"] @ p["c"] - every["h"] @ p["b"]
              - np.einsum("bi,ij,bj->b", every["x"], p["W"], every["h"])
              - np.einsum("bi,ij,bj->b", every["y"], p["U"], every["h"]))
    assert exact_log_z(c, memory=memory) == pytest.approx(logsumexp(-energy), abs=1e-12)


def test_chunking_leaves_the_sums_unchanged():
    """Tiny budgets (one row x a few states per chunk) give the default's answers to 1e-12."""
    c = _randomised("dbm", seed=3, nv=6, n1=4, n2=3)
    rows = np.random.default_rng(4).integers(0, 2, (11, 6)).astype(float)
    whole = log_likelihood(c, rows, 0.0, memory=1 << 30)
    for memory in (3_000, 6_000, 50_000):
        np.testing.assert_allclose(log_likelihood(c, rows, 0.0, memory=memory), whole, rtol=0, atol=1e-12)
        assert exact_log_z(c, memory=memory) == pytest.approx(exact_log_z(c, memory=1 << 30), abs=1e-12)


def test_dbm_64_32_16_stays_under_the_budget():
    """The bug: rows x 2^16 h2 states in one chunk (300 rows: 25 GiB; these 40: over 9 GiB); now `memory` at a time.

    40 rows, not 300, keep the test fast: the chunking does not depend on the row count.
    """
    c = pgmdsl.load("dbm", nv=64, n1=32, n2=16).compile(dtype="float64")
    rows = np.random.default_rng(5).integers(0, 2, (40, 64)).astype(float)
    memory = 64 << 20
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = log_likelihood(c, rows, 0.0, memory=memory)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.75 * memory
    assert result.shape == (40,) and np.all(np.isfinite(result))


def test_a_budget_below_one_row_and_one_state_is_one_line():
    c = pgmdsl.load("dbm", nv=6, n1=4, n2=3).compile(dtype="float64")
    with pytest.raises(DSLError) as error:
        log_likelihood(c, np.zeros((2, 6)), 0.0, memory=100)
    assert "\n" not in str(error.value) and "one row x one state" in str(error.value)
    with pytest.raises(DSLError):
        exact_log_z(c, memory=100)
