"""Binomial units, binomial(n) (Teh and Hinton 2001), against brute force written here.

Every answer comes from enumerating the states of tiny RBMs, scoring each by
-E + log C(n, x) (the binomial coefficient is the units' base measure),
never from the compiler's own output: log Z, free energies, conditional
means, sampler frequencies (chi-square), the log-likelihood and its gradient
(finite differences of the enumerated log-likelihood), pseudo-likelihood,
the mean-field bound, AIS and RAISE. Both backends run the same checks
(CuPy's module on NumPy through PGMDSL_CUPY_STANDIN=numpy).
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from math import comb

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import pgmdsl
from pgmdsl import units
from pgmdsl.errors import DataError
from pgmdsl.evaluate import ais, exact_log_z, log_likelihood, lower_bound, pseudo_log_likelihood
from pgmdsl.units import families
from pgmdsl.units.base import Base

ENERGY = """
param W[nv, nh] ~ normal(0, 0.5)
param a[nv] = 0
param b[nh] = 0
energy = -a[i]*v[i] - b[j]*h[j] - v[i]*W[i,j]*h[j]
"""
# hidden counts 0..3 under binary visible units; visible counts 0..n (a size) under binary hidden ones
HIDDEN = "model hidden_counts(nv: int = 3, nh: int = 2)\nvisible v[nv]: binary\nhidden h[nh]: binomial(3)\n" + ENERGY
VISIBLE = "model visible_counts(nv: int = 3, nh: int = 2, n: int = 3)\nvisible v[nv]: binomial(n)\nhidden h[nh]: binary\n" + ENERGY
TEXTS = {"hidden": HIDDEN, "visible": VISIBLE}
TRIALS = {"hidden": {"v": 1, "h": 3}, "visible": {"v": 3, "h": 1}}  # binary units are binomial(1): C(1, x) = 1
BACKENDS = ["numpy", "cupy"]


@pytest.fixture(autouse=True)
def standin(monkeypatch):
    monkeypatch.setenv("PGMDSL_CUPY_STANDIN", "numpy")


def parameters(which: str) -> dict:
    rng = np.random.default_rng(len(which))
    return {"W": rng.normal(0, 0.5, (3, 2)), "a": rng.normal(0, 0.5, 3), "b": rng.normal(0, 0.5, 2)}


@lru_cache(maxsize=None)
def _compiled(which: str, backend: str, text: str):
    c = pgmdsl.parse(text, f"{which}.dgm").compile(backend=backend, dtype="float64", cache=False)
    c.params = {k: c.xp.asarray(v) for k, v in parameters(which).items()}
    return c


def compiled(which: str, backend: str = "numpy", text: str | None = None):
    return _compiled(which, backend, text or TEXTS[which])


# ---- brute force: every state, scored by -E + log C(n, x) ----

def grid(trials: int, size: int) -> np.ndarray:
    return np.array(list(itertools.product(range(trials + 1), repeat=size)), dtype=float)


def log_measure(x: np.ndarray, trials: int) -> np.ndarray:
    return np.log([[comb(trials, int(k)) for k in row] for row in x]).sum(1)


def energy(p, v, h):
    return -(v @ p["a"]) - (h @ p["b"]) - np.einsum("bi,ij,bj->b", v, p["W"], h)


def joint(which: str, p=None):
    """All visible states V, all hidden states H and log p*(v, h) = -E + log C(n, v) + log C(m, h) for each pair."""
    p = parameters(which) if p is None else p
    V, H = grid(TRIALS[which]["v"], 3), grid(TRIALS[which]["h"], 2)
    v, h = np.repeat(V, len(H), axis=0), np.tile(H, (len(V), 1))
    log_p = -energy(p, v, h) + log_measure(v, TRIALS[which]["v"]) + log_measure(h, TRIALS[which]["h"])
    return V, H, log_p.reshape(len(V), len(H))


def data_rows(which: str, rows: int = 40, seed: int = 3) -> np.ndarray:
    """Exact draws of v from the model (enumerated marginal)."""
    V, _, log_p = joint(which)
    marginal = np.exp(logsumexp(log_p, axis=1) - logsumexp(log_p))
    return V[np.random.default_rng(seed).choice(len(V), rows, p=marginal)]


def exact_log_p(which: str, rows: np.ndarray, p=None) -> np.ndarray:
    V, _, log_p = joint(which, p)
    free = logsumexp(log_p, axis=1) - logsumexp(log_p)
    return np.array([free[np.flatnonzero((V == row).all(1))[0]] for row in rows])


# ---- the compiled kernels against enumeration ----

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", TEXTS)
def test_log_z_and_free_energies_match_enumeration(which, backend):
    c = compiled(which, backend)
    V, H, log_p = joint(which)
    assert exact_log_z(c) == pytest.approx(logsumexp(log_p), rel=1e-12)
    np.testing.assert_allclose(c.free_energy({"v": V}), -logsumexp(log_p, axis=1), rtol=1e-12)
    np.testing.assert_allclose(c.free_energy({"h": H}, summed=("v",)), -logsumexp(log_p, axis=0), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", TEXTS)
def test_conditional_means_match_enumeration(which, backend):
    c = compiled(which, backend)
    V, H, log_p = joint(which)
    given_v = np.exp(log_p - logsumexp(log_p, axis=1, keepdims=True))  # p(h | v), rows v
    given_h = np.exp(log_p - logsumexp(log_p, axis=0, keepdims=True))  # p(v | h), columns h
    np.testing.assert_allclose(c.mean("h", {"v": V}), given_v @ H, rtol=1e-12)
    np.testing.assert_allclose(c.mean("v", {"h": H}), given_h.T @ V, rtol=1e-12)


def chi_square_p_values(draws: np.ndarray, states: np.ndarray, probabilities: np.ndarray) -> list[float]:
    """Per unit, the chi-square p-value of the draws' counts of each value against the exact marginal."""
    p_values = []
    for unit in range(draws.shape[1]):
        values = np.unique(states[:, unit])
        expected = np.array([probabilities[states[:, unit] == k].sum() for k in values]) * len(draws)
        observed = np.array([(draws[:, unit] == k).sum() for k in values])
        assert observed.sum() == len(draws)  # every draw is one of the values
        p_values.append(stats.chisquare(observed, expected).pvalue)
    return p_values


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", TEXTS)
def test_samplers_draw_the_exact_conditionals(which, backend):
    c = compiled(which, backend)
    V, H, log_p = joint(which)
    draws = 20_000
    row_v, row_h = 5, 3
    for layer, states, given, probabilities in (
        ("h", H, {"v": np.repeat(V[row_v:row_v + 1], draws, 0)}, np.exp(log_p[row_v] - logsumexp(log_p[row_v]))),
        ("v", V, {"h": np.repeat(H[row_h:row_h + 1], draws, 0)}, np.exp(log_p[:, row_h] - logsumexp(log_p[:, row_h]))),
    ):
        sample = np.asarray(c.sample_layer(layer, given, c.random(7)))
        assert min(chi_square_p_values(sample, states, probabilities)) > 1e-4
        if hasattr(c.module, f"draw_{layer}"):  # the draw from means already computed
            again = getattr(c.module, f"draw_{layer}")(c.mean(layer, given), c.random(8))
            assert min(chi_square_p_values(np.asarray(again), states, probabilities)) > 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", TEXTS)
def test_the_gradient_is_the_derivative_of_the_enumerated_log_likelihood(which, backend):
    c = compiled(which, backend)
    rows = data_rows(which, 6)
    V, H, log_p = joint(which)
    weights = np.exp(log_p - logsumexp(log_p)).ravel()  # the model's statistics: every state, weighted exactly
    model = {"v": np.repeat(V, len(H), axis=0), "h": np.tile(H, (len(V), 1))}
    gradient = c.gradient({"v": rows}, model, model_weights=weights)
    step = 1e-5
    for name, value in parameters(which).items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            up, down = dict(parameters(which)), dict(parameters(which))
            up[name], down[name] = value.copy(), value.copy()
            up[name][index] += step
            down[name][index] -= step
            numeric[index] = (exact_log_p(which, rows, up).mean() - exact_log_p(which, rows, down).mean()) / (2 * step)
        np.testing.assert_allclose(gradient[name], numeric, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", TEXTS)
def test_likelihoods_and_the_mean_field_bound_match_enumeration(which, backend):
    """An RBM's posterior factorises, so the mean-field bound is the log-likelihood: entropy and measure exact."""
    c = compiled(which, backend)
    rows = data_rows(which, 12)
    exact = exact_log_p(which, rows)
    log_z = exact_log_z(c)
    np.testing.assert_allclose(log_likelihood(c, rows, log_z), exact, rtol=1e-10)
    np.testing.assert_allclose(lower_bound(c, rows, log_z), exact, rtol=1e-9)
    # pseudo-likelihood: each unit against all its values, the others held
    V, _, log_p = joint(which)
    marginal = logsumexp(log_p, axis=1)
    index = {tuple(row): k for k, row in enumerate(V)}
    expected = np.zeros(len(rows))
    for r, row in enumerate(rows):
        for unit in range(3):
            alternatives = []
            for value in range(TRIALS[which]["v"] + 1):
                changed = row.copy()
                changed[unit] = value
                alternatives.append(marginal[index[tuple(changed)]])
            expected[r] += marginal[index[tuple(row)]] - logsumexp(alternatives)
    np.testing.assert_allclose(pseudo_log_likelihood(c, rows), expected, rtol=1e-10)


@pytest.mark.parametrize("which", TEXTS)
def test_ais_finds_the_exact_log_z(which):
    c = compiled(which)
    estimate = ais(c, data_rows(which, 200), runs=200, schedule=np.linspace(0, 1, 2000), seed=1, progress=False)
    assert abs(estimate.log_z - logsumexp(joint(which)[2])) < 0.05


def test_raise_bounds_the_log_likelihood_of_binomial_visible_units():
    from pgmdsl.evaluate.reverse import raise_log_likelihood

    c = compiled("visible")
    rows = data_rows("visible", 5)
    estimate = raise_log_likelihood(c, rows, base=data_rows("visible", 200), runs=40,
                                    schedule=np.linspace(0, 1, 500), progress=False)
    assert abs(estimate.mean - exact_log_p("visible", rows).mean()) < 0.05


LATERAL = """
model lateral_counts(n: int = 3, nh: int = 2)
visible v[n]: binomial(2)
hidden  h[nh]: binary
param L[n, n] ~ normal(0, 0.3) : symmetric, zero_diagonal
param W[n, nh] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
param b[nh] = 0
energy = -a[i]*v[i] - b[j]*h[j] - v[i]*W[i,j]*h[j] - v[i]*L[i,k]*v[k] / 2
"""


def test_counts_coupled_to_each_other_are_drawn_unit_by_unit_from_the_exact_model():
    c = pgmdsl.parse(LATERAL, "lateral.dgm").compile(dtype="float64", cache=False, seed=3)
    assert c.layers["v"]["update"] == "unitwise"
    p = {k: np.asarray(v) for k, v in c.params.items()}
    V, H = grid(2, 3), grid(1, 2)
    v, h = np.repeat(V, len(H), axis=0), np.tile(H, (len(V), 1))
    log_p = (-energy(p, v, h) + np.einsum("bi,ik,bk->b", v, p["L"], v) / 2 + log_measure(v, 2)).reshape(len(V), len(H))
    assert exact_log_z(c) == pytest.approx(logsumexp(log_p), rel=1e-12)
    means = np.exp(logsumexp(log_p, axis=1) - logsumexp(log_p)) @ V
    np.testing.assert_allclose(c.sample(4000, steps=20, seed=1)["v"].mean(0), means, atol=0.05)


def test_the_energy_must_be_linear_in_counts():
    text = HIDDEN.replace("energy = -a[i]*v[i]", "energy = h[j]*h[j] - a[i]*v[i]")
    with pytest.raises(pgmdsl.DSLError, match=r"not linear in binomial\(3\) layer h"):
        pgmdsl.parse(text, "square.dgm").compile(cache=False)


def test_float32_modules_stay_float32():
    c = pgmdsl.parse(HIDDEN, "hidden.dgm").compile(dtype="float32", cache=False)
    V, H = grid(1, 3).astype(np.float32), grid(3, 2).astype(np.float32)
    assert c.free_energy({"h": H}, summed=("v",)).dtype == c.free_energy({"v": V}).dtype == np.float32
    assert c.mean("h", {"v": V}).dtype == c.sample_layer("h", {"v": V}, c.random(0)).dtype == np.float32


# ---- the registry: families, aliases, canonical names ----

def test_a_family_makes_one_cached_instance_per_argument():
    three = units.get("binomial(3)")
    assert three is units.get(" binomial( 3 ) ") and three is families.instance("binomial", (3,))
    assert three.name == "binomial(3)" and three.values == (0, 1, 2, 3) and three.trials == 3
    assert units.get("binomial(4)").values == (0, 1, 2, 3, 4)
    for bad in ("binomial(0)", "binomial()", "binomial(1, 2)", "binomial(x)", "nothing(3)", "binomial"):
        assert units.get(bad) is None
    assert "binomial" in families.family_names() and "binomial" not in units.names()
    with pytest.raises(ValueError, match="identifier"):
        units.register_family("2x", lambda n: three)
    with pytest.raises(ValueError, match="takes 1 argument, got 2"):
        families.instance("binomial", (1, 2))
    with pytest.raises(ValueError, match="positive integers, got 0"):
        families.instance("binomial", (0,))


@pytest.fixture
def aliases(monkeypatch):
    """binomial(3) registered as `counts3`, and the family as `counts`, for one test."""
    monkeypatch.setitem(units._REGISTRY, "counts3", units.get("binomial(3)"))
    monkeypatch.setitem(families._FAMILIES, "counts", families._FAMILIES["binomial"])
    units.register(units.get("binomial(3)"), "counts3")
    units.register_family("counts", families._FAMILIES["binomial"])


@pytest.mark.parametrize("written", ["counts3", "counts(3)"])
def test_a_binomial_type_under_a_second_name_gives_identical_results(aliases, written):
    original = compiled("hidden")
    renamed = HIDDEN.replace("binomial(3)", written)
    aliased = compiled("hidden", text=renamed)
    assert aliased.layers["h"]["unit"] == written and units.get(written) is units.get("binomial(3)")
    V, H, _ = joint("hidden")
    np.testing.assert_array_equal(aliased.free_energy({"v": V}), original.free_energy({"v": V}))
    np.testing.assert_array_equal(aliased.free_energy({"h": H}, summed=("v",)),
                                  original.free_energy({"h": H}, summed=("v",)))
    np.testing.assert_array_equal(aliased.mean("h", {"v": V}), original.mean("h", {"v": V}))
    np.testing.assert_array_equal(aliased.sample_layer("h", {"v": V}, np.random.default_rng(2)),
                                  original.sample_layer("h", {"v": V}, np.random.default_rng(2)))
    assert exact_log_z(aliased) == exact_log_z(original)


def test_the_argument_may_be_a_size_or_a_size_let():
    text = VISIBLE.replace("visible v[nv]: binomial(n)", "let m = 2 * n - 1\nvisible v[nv]: binomial(m - n + 1)")
    model = pgmdsl.parse(text, "visible.dgm", n=4)
    assert model.layer("v").unit == "binomial(4)"
    assert pgmdsl.parse(VISIBLE, "visible.dgm", n=5).layer("v").unit == "binomial(5)"


# ---- what the checker refuses, where ----

@pytest.mark.parametrize("unit, column, message", [
    ("binomial", 15, "unit type 'binomial' takes arguments: write binomial(n)"),
    ("binomial(0)", 24, "argument 1 of unit type binomial(n) must be a positive integer, got 0"),
    ("binomial(-2)", 24, "argument 1 of unit type binomial(n) must be a positive integer, got -2"),
    ("binomial(2.5)", 24, "argument 1 of unit type binomial(n) must be a positive integer, got 2.5"),
    ("binomial(nh / 4)", 24, "size 2/4 is not a whole number"),
    ("binomial(W)", 24, "'W' is a parameter, not a size"),
    ("binomial(2, 3)", 15, "unit type binomial(n) takes 1 argument, got 2"),
    ("binomial(100000)", 15, "binomial(n) takes n from 1 to 65,536, got 100,000"),
    ("binary(2)", 15, "unit type 'binary' takes no arguments"),
    ("binomal(3)", 15, "unknown unit type 'binomal' (known: "),
    ("binomial(3) pooled(2) into p", 27, "only a hidden binary layer can be pooled; 'h' is hidden binomial(3)"),
])
def test_the_checker_refuses_bad_binomial_layers_with_their_position(unit, column, message):
    text = HIDDEN.replace("hidden h[nh]: binomial(3)", f"hidden h[nh]: {unit}")
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.parse(text, "bad.dgm")
    error = caught.value
    assert error.message.startswith(message) and (error.filename, error.line, error.column) == ("bad.dgm", 3, column)
    assert "\n" not in error.message
    if unit.startswith("binomal"):
        assert "binomial(n)" in error.message and error.message.endswith("(did you mean 'binomial'?)")


def test_data_must_be_counts_in_range():
    unit = units.get("binomial(3)")
    unit.check_data(np.array([[0, 1, 2, 3]], dtype=float), "v")
    for value, where in ((1.5, "row 1, unit 2"), (4.0, "row 1, unit 2"), (-1.0, "row 1, unit 2"), (np.nan, "row 1, unit 2")):
        rows = np.zeros((2, 3))
        rows[1, 2] = value
        with pytest.raises(DataError, match=rf"take the integers 0 to 3; the data has {value:g} at {where}: give counts"):
            unit.check_data(rows, "v")
    with pytest.raises(DataError, match="binomial"):
        compiled("visible").fit(np.full((4, 3), 0.5), epochs=1)


def test_training_on_counts_runs_and_moves_the_parameters():
    c = pgmdsl.parse(VISIBLE, "visible.dgm").compile(dtype="float64", cache=False, seed=2)
    before = {k: np.array(v) for k, v in c.params.items()}
    c.fit(data_rows("visible", 30), epochs=2, batch_size=10, method="pcd", seed=1)
    assert all(np.isfinite(v).all() for v in c.params.values())
    assert any(not np.array_equal(before[k], c.params[k]) for k in before)


# ---- the unit type's own hooks, against scipy.stats.binom and enumeration ----

def test_measure_entropy_and_random_start_of_binomial_units():
    unit = units.get("binomial(3)")
    x = np.array([[0.0, 1.0, 2.0, 3.0], [3.0, 3.0, 0.0, 1.0]])
    np.testing.assert_allclose(unit.log_measure_of(x), [np.log(1 * 3 * 3 * 1), np.log(1 * 1 * 1 * 3)])
    np.testing.assert_allclose(compiled("hidden").module.binomial_log_measure(x, 3).sum(1), unit.log_measure_of(x))
    mean = np.array([[0.3, 1.5, 2.9]])
    law = stats.binom(3, mean / 3)
    np.testing.assert_allclose(unit.entropy(mean), [law.entropy().sum()])
    expected = sum(law.pmf(k) * np.log(comb(3, k)) for k in range(4)).sum()
    np.testing.assert_allclose(unit.expected_log_measure(mean), [expected])
    start = unit.initial((200, 5), np.random.default_rng(0), np)
    unit.check_data(start, "h")
    assert set(np.unique(start)) == {0.0, 1.0, 2.0, 3.0}


def test_the_base_model_of_ais_is_exact_for_binomial_units():
    unit = units.get("binomial(3)")
    field = np.array([0.4, -1.2])
    states = grid(3, 2)
    log_weights = states @ field + log_measure(states, 3)
    assert unit.base_log_partition(Base(field)) == pytest.approx(logsumexp(log_weights), abs=1e-12)
    draws = unit.base_sample(Base(field), 100_000, np.random.default_rng(0))
    np.testing.assert_allclose(draws.mean(0), np.exp(log_weights - logsumexp(log_weights)) @ states, atol=0.01)
    rows = draws[:1000]
    p = (rows.sum(0) / 3 + 50) / (1000 + 100)  # the smoothed mean / n: 5 pseudo-counts per 100 rows, as for binary
    np.testing.assert_allclose(unit.fit_base(rows).field, np.log(p / (1 - p)))
