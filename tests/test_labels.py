"""p(label | rest) against brute force: the hand-written energy, every label and hidden state enumerated."""

import numpy as np
import pytest
from scipy.special import logsumexp

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.evaluate import (label_accuracy, label_log_likelihood, label_log_probabilities, label_metrics,
                             predict_labels)

import exact


def class_rbm(nx=4, ny=3, nh=3, seed=0, scale=1.0):
    c = pgmdsl.load("class_rbm", nx=nx, ny=ny, nh=nh).compile(dtype="float64")
    rng = np.random.default_rng(seed)
    for param in c.model.params:
        c.params[param.name] = rng.normal(0, scale, param.shape)
    return c


def brute_force_log_p(c, x):
    """log p(y | x) for each row of x: sum over h of exp(-E(x, y, h)), normalised over y, from exact.class_rbm."""
    ys = exact.layer_states(c.layers["y"])
    hs = exact.layer_states(c.layers["h"])
    table = np.empty((len(x), len(ys)))
    for row, values in enumerate(x):
        for k, y in enumerate(ys):
            state = {"x": np.repeat(values[None], len(hs), 0), "y": np.repeat(y[None], len(hs), 0), "h": hs}
            table[row, k] = logsumexp(-exact.class_rbm(c.params, state))
    return table - logsumexp(table, axis=1, keepdims=True), ys


def rows(c, n=9, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (n, c.layers["x"]["shape"][0])).astype(float)
    y = np.eye(c.layers["y"]["shape"][0])[rng.integers(0, c.layers["y"]["shape"][0], n)]
    return x, y


def test_class_rbm_label_probabilities_are_the_brute_force_ones():
    c = class_rbm()
    x, _ = rows(c)
    got, states = label_log_probabilities(c, {"x": x}, "y")
    expected, expected_states = brute_force_log_p(c, x)
    np.testing.assert_array_equal(states, expected_states)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.exp(got).sum(1), 1, rtol=0, atol=1e-12)


def test_prediction_and_accuracy_follow_the_brute_force_probabilities():
    c = class_rbm(seed=3)
    x, y = rows(c, n=40, seed=4)
    expected, ys = brute_force_log_p(c, x)
    best = ys[np.argmax(expected, 1)]
    np.testing.assert_array_equal(predict_labels(c, {"x": x}, "y"), best)
    assert label_accuracy(c, {"x": x, "y": y}, "y") == pytest.approx(np.mean(np.all(best == y, 1)))
    assert label_accuracy(c, {"x": x, "y": best}, "y") == 1.0
    # an array for the one other observed layer works as well as a dict
    np.testing.assert_array_equal(predict_labels(c, x, "y"), best)


def test_a_binary_label_layer_of_several_units_is_enumerated_too():
    """Any discrete visible layer can be the label: here the rbm's own visible layer given nothing else."""
    source = """model two(nx: int = 3, ny: int = 2, nh: int = 2)
visible x[nx]: binary
visible y[ny]: spin
hidden h[nh]: binary
param W[nx, nh] ~ normal(0, 1)
param U[ny, nh] ~ normal(0, 1)
param c[ny] ~ normal(0, 1)
energy = -x[i]*W[i,j]*h[j] - y[k]*U[k,j]*h[j] - c[k]*y[k]"""
    c = pgmdsl.parse(source, filename="two.dgm").compile(dtype="float64")
    x = np.array([[0, 1, 1], [1, 0, 0.0]])
    got, states = label_log_probabilities(c, {"x": x}, "y")
    assert states.shape == (4, 2) and set(np.unique(states)) == {-1.0, 1.0}
    ys, hs = exact.layer_states(c.layers["y"]), exact.layer_states(c.layers["h"])
    p = c.params
    for row in range(2):
        table = []
        for y in states:
            h = hs
            energy = -(np.repeat(x[row][None], len(h), 0) @ p["W"] * h).sum(1) - (y @ p["U"] * h).sum(1) - y @ p["c"]
            table.append(logsumexp(-energy))
        table = np.array(table)
        np.testing.assert_allclose(got[row], table - logsumexp(table), rtol=0, atol=1e-12)
    assert len(ys) == 4


GAUSSIAN_LABEL = """model g(nx: int = 3, ny: int = 2, nh: int = 2)
visible x[nx]: binary
visible y[ny]: gaussian
hidden h[nh]: binary
param W[nx, nh] ~ normal(0, 1)
param U[ny, nh] ~ normal(0, 1)
energy = y[k]*y[k]/2 - x[i]*W[i,j]*h[j] - y[k]*U[k,j]*h[j]"""

DEEP_LABEL = """model d(nx: int = 3, ny: int = 2, nh: int = 2)
visible x[nx]: binary
visible y[ny]: onehot
hidden h1[nh]: binary
hidden h2[nh]: binary
param W[nx, nh] ~ normal(0, 1)
param U[ny, nh] ~ normal(0, 1)
param Q[nh, nh] ~ normal(0, 1)
energy = -x[i]*W[i,j]*h1[j] - y[k]*U[k,j]*h1[j] - h1[j]*Q[j,l]*h2[l]"""


@pytest.mark.parametrize("make, layer, fragment", [
    (lambda: class_rbm(nx=3, ny=2, nh=2), "h", "layer 'h' is hidden"),
    (lambda: class_rbm(nx=3, ny=2, nh=2), "z", "has no layer 'z'"),
    (lambda: pgmdsl.load("rbm", nv=3, nh=2).compile(dtype="float64"), "v", "the only observed layer"),
    (lambda: pgmdsl.parse(GAUSSIAN_LABEL, filename="g.dgm").compile(dtype="float64"), "y", "cannot be enumerated"),
    (lambda: pgmdsl.parse(DEEP_LABEL, filename="d.dgm").compile(dtype="float64"), "y", "keeps h2"),
])
def test_what_cannot_be_a_label_says_why(make, layer, fragment):
    c = make()
    with pytest.raises(DSLError) as caught:
        label_log_probabilities(c, {"x": np.zeros((1, 3))}, layer)
    assert fragment in caught.value.message
    with pytest.raises(DSLError) as caught:  # fit checks before training, whatever the objective
        c.fit({"x": np.zeros((4, 3)), "y": np.zeros((4, 2))} if "y" in c.layers else np.zeros((4, 3)), epochs=1,
              verbose=0, labels=layer)
    assert caught.value.message.startswith(f"fit: labels='{layer}': ") and fragment in caught.value.message


def test_label_metrics_are_accuracy_and_mean_conditional_log_likelihood():
    c = class_rbm(seed=9)
    x, y = rows(c, n=25, seed=10)
    expected, ys = brute_force_log_p(c, x)
    truth = np.argmax(y, 1)
    metrics = label_metrics(c, {"x": x, "y": y}, "y")
    assert metrics["accuracy"] == pytest.approx(np.mean(np.argmax(expected, 1) == truth))
    assert metrics["log_likelihood"] == pytest.approx(np.mean(expected[np.arange(25), truth]), abs=1e-12)
    np.testing.assert_allclose(label_log_likelihood(c, {"x": x, "y": y}, "y"), expected[np.arange(25), truth],
                               rtol=0, atol=1e-12)
    with pytest.raises(DSLError, match="row 0 of layer 'y' is not one of its states"):
        label_metrics(c, {"x": x, "y": y * 0.5}, "y")


def test_accuracy_needs_the_true_labels_and_the_other_layers():
    c = class_rbm()
    x, y = rows(c)
    with pytest.raises(DSLError, match="needs the true values of layer 'y'"):
        label_accuracy(c, {"x": x}, "y")
    with pytest.raises(DSLError, match="lacks layer x"):
        label_log_probabilities(c, {"y": y}, "y")


def test_a_trained_class_rbm_classifies_its_training_labels():
    """Bars (label 0) against stripes (label 1) on 3x3 images: after training, p(y | x) must tell them apart."""
    images = pgmdsl.datasets.bars_and_stripes(3, duplicates=False)  # 8 stripes then 6 bars
    labels = np.eye(2)[[0] * 8 + [1] * 6]
    c = pgmdsl.load("class_rbm", nx=9, ny=2, nh=16).compile(dtype="float64")
    before = label_accuracy(c, {"x": images, "y": labels}, "y")
    c.fit({"x": images, "y": labels}, method="cd", epochs=1000, batch_size=2, lr=0.1, seed=0, verbose=0)
    after = label_accuracy(c, {"x": images, "y": labels}, "y")
    assert after == 1.0 and before < 1.0


# ---- discriminative and hybrid training: the exact gradient of log p(y | x) ----

def brute_force_label_gradient(c, x, y):
    """d/dtheta of mean_r log p(y_r | x_r), from the hand-written energy: every (y', h) enumerated, complex step."""
    ys, hs = exact.layer_states(c.layers["y"]), exact.layer_states(c.layers["h"])
    params = {k: np.asarray(v) for k, v in c.params.items()}
    total = {k: np.zeros_like(v) for k, v in params.items()}
    for values, label in zip(x, y):
        # every (y', h) for this row: weights p(y', h | x) and p(h | x, y)
        state = exact.product_state({"y": ys, "h": hs})
        state["x"] = np.repeat(values[None], len(state["h"]), 0)
        minus_energy = -exact.class_rbm(params, state)
        joint = np.exp(minus_energy - logsumexp(minus_energy))
        given = np.all(state["y"] == label, axis=1)
        posterior = np.where(given, np.exp(minus_energy - logsumexp(minus_energy[given])), 0.0)
        derivatives = exact.energy_derivatives(exact.class_rbm, params, state)  # dE/dtheta per (y', h)
        for name, d in derivatives.items():
            total[name] += -(np.tensordot(posterior, d, axes=(0, 0)) - np.tensordot(joint, d, axes=(0, 0)))
    return {k: v / len(x) for k, v in total.items()}


def test_the_discriminative_step_is_the_exact_gradient_of_log_p_y_given_x():
    from pgmdsl.runtime.train import Trainer

    c = class_rbm(nx=3, ny=3, nh=2, seed=5)
    x, y = rows(c, n=4, seed=6)
    trainer = Trainer(c, {"x": x, "y": y}, objective="discriminative", labels="y", verbose=0)
    assert trainer.fused is None and "discriminative objective" in trainer.why_generic
    steps, _ = trainer.labelled.steps({"x": x, "y": y}, 1.0)
    expected = brute_force_label_gradient(c, x, y)
    for name in expected:
        np.testing.assert_allclose(steps[name], expected[name], rtol=0, atol=1e-10, err_msg=name)


def test_a_label_that_is_no_state_of_its_layer_is_refused():
    c = class_rbm()
    x, y = rows(c)
    with pytest.raises(DSLError, match="a row of layer 'y' is not one of its states"):
        c.fit({"x": x, "y": 0.5 * y}, epochs=1, verbose=0, objective="discriminative", labels="y")


def test_the_hybrid_step_adds_the_weighted_generative_one():
    """hybrid(lr) = discriminative(lr) + 0.3 generative(lr): the generative part makes the same draws."""
    from pgmdsl.runtime.train import Trainer

    c = class_rbm(nx=3, ny=3, nh=2, seed=7)
    x, y = rows(c, n=4, seed=8)
    data = {"x": x, "y": y}
    start = {k: v.copy() for k, v in c.params.items()}
    moved = {}
    for objective in ("hybrid", "generative", "discriminative"):
        for k, v in start.items():
            c.params[k] = v.copy()
        trainer = Trainer(c, data, method="cd", objective=objective, labels="y", generative_weight=0.3, verbose=0)
        trainer.sampler = np.random.default_rng(2)
        trainer.update(data, 0.1)
        moved[objective] = {k: c.params[k] - start[k] for k in start}
    assert all(np.abs(step).max() > 1e-4 for step in moved["generative"].values())
    # the inputs' biases do not change p(y | x): their step is 0 but for rounding
    np.testing.assert_allclose(moved["discriminative"]["a"], 0, rtol=0, atol=1e-15)
    assert all(np.abs(moved["discriminative"][name]).max() > 1e-4 for name in ("W", "U", "b", "c"))
    for name in start:
        np.testing.assert_allclose(moved["hybrid"][name], moved["discriminative"][name] + 0.3 * moved["generative"][name],
                                   rtol=0, atol=1e-12, err_msg=name)


def linear_rule(rows=60, units=9, seed=0):
    """Random binary inputs labelled by a random linear rule (half of each class)."""
    rng = np.random.default_rng(seed)
    x = (rng.random((rows, units)) < 0.5).astype(float)
    score = x @ rng.normal(size=units)
    return {"x": x, "y": np.eye(2)[(score > np.median(score)).astype(int)]}


def test_discriminative_training_climbs_the_conditional_likelihood():
    data = linear_rule()
    final = {}
    for objective in ("discriminative", "generative"):
        c = pgmdsl.load("class_rbm", nx=9, ny=2, nh=8).compile(dtype="float64")
        history = c.fit(data, epochs=50, batch_size=10, lr=0.5 if objective == "discriminative" else 0.1, seed=0,
                        verbose=0, objective=objective, labels="y")
        likelihood = history.column("train_label_log_likelihood")
        final[objective] = likelihood[-1]
        assert likelihood[0] == pytest.approx(np.log(0.5), abs=0.02)  # small initial weights: p(y | x) about 1/2
    assert final["discriminative"] > -0.2 and final["discriminative"] > final["generative"] + 0.1
    c = pgmdsl.load("class_rbm", nx=9, ny=2, nh=8).compile(dtype="float64")
    c.fit(data, epochs=50, batch_size=10, lr=0.5, seed=0, verbose=0, objective="discriminative", labels="y")
    assert label_accuracy(c, data, "y") >= 0.95


@pytest.mark.parametrize("given, message", [
    (dict(objective="discriminative"), "objective='discriminative' needs labels="),
    (dict(objective="hybrid", labels="h"), "fit: labels='h': layer 'h' is hidden"),
    (dict(objective="discriminative", labels="q"), "fit: labels='q': model class_rbm has no layer 'q'"),
    (dict(objective="sideways", labels="y"), "objective must be 'generative', 'discriminative' or 'hybrid'"),
])
def test_objective_errors(given, message):
    c = class_rbm()
    x, y = rows(c)
    with pytest.raises(DSLError) as caught:
        c.fit({"x": x, "y": y}, epochs=1, verbose=0, **given)
    assert message in caught.value.message
