"""Hybrid Monte Carlo for the mcRBM's image: the derived force against finite differences of the hand-written
energy, and the transitions against the exact Gaussian conditional they must leave invariant."""

import numpy as np
import pytest

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.runtime.hmc import HMC
from pgmdsl.runtime.samplers import Gibbs

import exact


def mcrbm(seed=0, scale=0.7):
    c = pgmdsl.load("mcrbm", nv=5, nm=3, nc=4).compile(dtype="float64")
    rng = np.random.default_rng(seed)
    for param in c.model.params:
        c.params[param.name] = rng.normal(0, scale, param.shape)
    return c


def hidden_rows(rows, seed=1):
    rng = np.random.default_rng(seed)
    hm, hc = rng.integers(0, 2, (1, 3)).astype(float), rng.integers(0, 2, (1, 4)).astype(float)
    return {"hm": np.repeat(hm, rows, 0), "hc": np.repeat(hc, rows, 0)}


def test_the_force_is_the_energy_gradient_by_finite_differences():
    c = mcrbm()
    rng = np.random.default_rng(2)
    state = {"x": rng.normal(size=(3, 5)), "hm": rng.integers(0, 2, (3, 3)).astype(float),
             "hc": rng.integers(0, 2, (3, 4)).astype(float)}
    params = {k: np.asarray(v) for k, v in c.params.items()}
    numeric = np.zeros((3, 5))
    for unit in range(5):
        step = np.zeros(5)
        step[unit] = 1e-6
        up = exact.ENERGIES["mcrbm"](params, {**state, "x": state["x"] + step})
        down = exact.ENERGIES["mcrbm"](params, {**state, "x": state["x"] - step})
        numeric[:, unit] = (up - down) / 2e-6
    np.testing.assert_allclose(c.module.gradient_x(c.params, state), numeric, atol=1e-6)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_transitions_leave_the_exact_conditional_invariant(beta):
    """Chains started at exact draws of p(x | hm, hc) at beta stay so distributed after fixed-step HMC."""
    c = mcrbm()
    rows = 20000
    state = hidden_rows(rows)
    rng = np.random.default_rng(3)
    state["x"] = c.module.sample_x(c.params, state, rng, beta=beta)
    hmc = HMC(c, "x", steps=5, step_size=0.3, adapt=False)
    for _ in range(3):
        state["x"] = hmc(c.params, state, rng, beta=beta)
    assert 0.5 < hmc.acceptance < 1.0  # moves are made and some are refused: the test is not vacuous
    precision = beta * c.module.precision_x(c.params, state)[0]
    mean = np.linalg.solve(precision, beta * c.module.field_x(c.params, state)[0])
    covariance = np.linalg.inv(precision)
    error = np.sqrt(np.diag(covariance) / rows)
    assert np.all(np.abs(state["x"].mean(axis=0) - mean) < 5 * error)
    spread = np.sqrt(np.outer(np.diag(covariance), np.diag(covariance)) * 2 / rows)
    assert np.all(np.abs(np.cov(state["x"].T) - covariance) < 5 * spread)


def test_a_bad_step_is_rejected_and_the_step_size_adapts():
    c = mcrbm()
    state = hidden_rows(50)
    state["x"] = np.zeros((50, 5))
    rng = np.random.default_rng(4)
    huge = HMC(c, "x", steps=10, step_size=50.0)
    assert np.array_equal(huge(c.params, state, rng), state["x"]) and huge.acceptance == 0.0
    assert huge.step_size == pytest.approx(50.0 / 1.02)
    small = HMC(c, "x", steps=3, step_size=1e-3)
    small(c.params, state, rng)
    assert small.acceptance == 1.0 and small.step_size == pytest.approx(1e-3 * 1.02)


def test_a_gibbs_sweep_takes_the_transition_in_place_of_the_exact_draw():
    c = mcrbm()
    calls = []

    def transition(params, state, rng, beta=1.0):
        calls.append(beta)
        return state["x"]

    gibbs = Gibbs(c, transitions={"x": transition})
    state = {"x": np.ones((4, 5)), **hidden_rows(4)}
    gibbs.sweep(state, np.random.default_rng(5), beta=0.5)
    assert calls == [0.5] and np.array_equal(state["x"], np.ones((4, 5)))


@pytest.mark.parametrize("settings, message", [
    (dict(layer="hm"), "hm of mcrbm is not one"),
    (dict(layer="x", steps=0), "steps must be a positive integer"),
    (dict(layer="x", step_size=-1.0), "step_size must be a positive number"),
    (dict(layer="x", target=1.5), "target must be an acceptance rate"),
])
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(DSLError, match=message):
        HMC(mcrbm(), **settings)


def test_the_precision_is_the_closed_form_where_the_planner_transposes_the_coupling():
    """At nv 128 the contraction planner forms R diag(hc) R^T by one product whose result is transposed: the
    matrix the diagonal is added to must still be C-ordered (it once was a copy, and I was lost)."""
    c = pgmdsl.load("mcrbm", nv=128, nm=8, nc=64).compile(dtype="float64")
    assert ".transpose(" in c.source[c.source.index("def precision_x"):c.source.index("def mean_x")]
    rng = np.random.default_rng(6)
    c.params["R"] = rng.normal(0, 0.1, (128, 64))
    hc = (rng.random((3, 64)) < 0.5).astype(float)
    expected = np.eye(128) + np.einsum("ik,bk,jk->bij", c.params["R"], hc, c.params["R"])
    np.testing.assert_allclose(c.module.precision_x(c.params, {"hc": hc}), expected, atol=1e-12)


def test_fit_and_sample_take_hmc_and_report_it(tmp_path):
    from pgmdsl.cli import main

    c = mcrbm()
    rows = np.random.default_rng(8).normal(size=(40, 5))
    history = c.fit(rows, method="pcd", epochs=2, batch_size=10, lr=0.001, verbose=0, hmc={"steps": 5})
    assert 0.0 <= history[-1]["hmc_acceptance_x"] <= 1.0 and history[-1]["hmc_step_size_x"] > 0
    assert c.sample(6, steps=3, hmc=True)["x"].shape == (6, 5)
    assert c.sample(6, steps=2, hmc=True, method="pt", temperatures=3)["x"].shape == (6, 5)
    with pytest.raises(DSLError, match="has no jointly drawn real-valued layer"):
        pgmdsl.load("rbm", nv=4, nh=3).compile().fit(np.zeros((10, 4)), epochs=1, hmc=True, verbose=0)
    with pytest.raises(DSLError, match="sample: .*hmc"):
        c.sample(2, steps=1, hmc={"leaps": 3})
    np.save(tmp_path / "x.npy", rows)
    assert main(["train", "mcrbm", "--set", "nv=5", "--set", "nm=3", "--set", "nc=4", "--data", str(tmp_path / "x.npy"),
                 "--epochs", "1", "--hmc", "--ais-runs", "0", "--quiet", "-o", str(tmp_path / "run")]) == 0
    assert "hmc_acceptance_x" in (tmp_path / "run" / "metrics.csv").read_text()
    assert main(["sample", str(tmp_path / "run"), "-n", "4", "--steps", "3", "--hmc", "-o", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 5)
