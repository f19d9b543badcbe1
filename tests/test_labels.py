"""p(label | rest) against brute force: the hand-written energy, every label and hidden state enumerated."""

import numpy as np
import pytest
from scipy.special import logsumexp

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.evaluate import label_accuracy, label_log_probabilities, predict_labels

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


@pytest.mark.parametrize("name, sizes, layer, fragment", [
    ("class_rbm", dict(nx=3, ny=2, nh=2), "h", "layer 'h' is hidden"),
    ("class_rbm", dict(nx=3, ny=2, nh=2), "z", "has no layer 'z'"),
    ("gbrbm", dict(nv=2, nh=2), "v", "cannot be enumerated"),
    ("dbm", dict(nv=3, n1=2, n2=2), "v", "keeps"),
])
def test_what_cannot_be_a_label_says_why(name, sizes, layer, fragment):
    c = pgmdsl.load(name, **sizes).compile(dtype="float64")
    with pytest.raises(DSLError) as caught:
        label_log_probabilities(c, {"x": np.zeros((1, 3))}, layer)
    assert fragment in caught.value.message


def test_accuracy_needs_the_true_labels_and_the_other_layers():
    c = class_rbm()
    x, y = rows(c)
    with pytest.raises(DSLError, match="true values of layer 'y'"):
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
