"""Backpropagation fine-tuning of a DBN (runtime.recipes.backprop) and pgmdsl.sklearn.DBNClassifier.

Gradients against central finite differences; the unrolled up pass against
the logistic of the RBM's energy written by hand and against the stack's own
transform; scikit-learn's estimator checks (none expected to fail); digits.
"""

import types

import numpy as np
import pytest

pytest.importorskip("sklearn")

from scipy.special import expit, log_softmax  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import pgmdsl  # noqa: E402
from pgmdsl.errors import DSLError  # noqa: E402
from pgmdsl.runtime.recipes.backprop import Network, unroll  # noqa: E402
from pgmdsl.runtime.stack import CompiledStack  # noqa: E402
from pgmdsl.runtime.train import TrainingDiverged  # noqa: E402
from pgmdsl.sklearn import DBNClassifier  # noqa: E402

EXPECTED_FAILED_CHECKS: dict[str, str] = {}  # none: every check passes


def rbm_levels(widths, seed=0, scale=1.0):
    """Compiled binary RBMs of the given widths, bottom first, with random parameters of `scale`."""
    rng = np.random.default_rng(seed)
    levels = []
    for number, (nv, nh) in enumerate(zip(widths, widths[1:])):
        level = pgmdsl.load("rbm", nv=nv, nh=nh).compile(dtype="float64", seed=number)
        for name, value in level.params.items():
            level.params[name] = rng.normal(0, scale, np.shape(value))
        levels.append(level)
    return levels


def test_unroll_is_the_rbms_up_pass():
    levels = rbm_levels((7, 5, 4))
    X = np.random.default_rng(1).random((20, 7))
    weights, biases = unroll(levels)
    rows = X
    for level, weight, bias in zip(levels, weights, biases):
        rows = expit(rows @ level.params["W"] + level.params["b"])  # p(h = 1 | v) of the energy in models/rbm.dgm
        np.testing.assert_allclose(weight, level.params["W"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(bias, level.params["b"], rtol=0, atol=1e-12)
    network = Network(weights, biases, 3, np.random.default_rng(0))
    top = network.forward(X)[-2]
    np.testing.assert_allclose(top, rows, rtol=0, atol=1e-10)
    np.testing.assert_allclose(top, CompiledStack(None, levels).transform(X), rtol=0, atol=1e-10)


def test_unroll_refuses_a_level_that_is_not_one_logistic_layer():
    (relu,) = [pgmdsl.load("relu_rbm", nv=4, nh=3).compile(dtype="float64", seed=0)]
    with pytest.raises(DSLError, match=r"level 0 \(relu_rbm\): hidden layer 'h' has relu units; .*values \{0, 1\}"):
        unroll([relu])

    lateral = pgmdsl.load("bm", n=4, nh=3).compile(dtype="float64", seed=0)
    with pytest.raises(DSLError, match=r"level 0 \(bm\): the units of hidden layer 'h' are coupled to each other"):
        unroll([lateral])

    bottom, rbm = rbm_levels((4, 3, 2))
    squared = types.SimpleNamespace(  # a level whose field is quadratic in v: field(v) = b + v W + v^2 W
        model=rbm.model, layers=rbm.layers, params=rbm.params, xp=np, dtype=rbm.dtype,
        module=types.SimpleNamespace(field_h=lambda p, s: rbm.module.field_h(p, s) + (s["v"] ** 2) @ p["W"]))
    with pytest.raises(DSLError, match=r"level 1 \(rbm\): the field of hidden layer 'h' is not affine in visible "
                                       r"layer 'v'") as error:
        unroll([bottom, squared])
    assert "\n" not in error.value.message

    with pytest.raises(DSLError, match=r"level 1 \(rbm\): visible layer 'v' has 4 units but the level below has 3"):
        unroll([bottom, bottom])


def test_gradients_are_the_finite_differences_of_the_loss():
    weights, biases = unroll(rbm_levels((5, 4, 3), seed=2))
    network = Network(weights, biases, 3, np.random.default_rng(0))
    network.weights[-1] = np.random.default_rng(3).normal(0, 1, network.weights[-1].shape)  # not the small start
    rng = np.random.default_rng(4)
    X, y = rng.random((6, 5)), np.array([0, 1, 2, 2, 1, 0])
    decay = 0.03
    loss, weight_grads, bias_grads = network.gradients(X, y, decay)
    assert loss == pytest.approx(network.loss(X, y, decay), rel=1e-12)
    step = 1e-6
    for params, grads in [(network.weights, weight_grads), (network.biases, bias_grads)]:
        for param, grad in zip(params, grads):
            numeric = np.empty_like(param)
            for index in np.ndindex(param.shape):
                saved = param[index]
                param[index] = saved + step
                up = network.loss(X, y, decay)
                param[index] = saved - step
                down = network.loss(X, y, decay)
                param[index] = saved
                numeric[index] = (up - down) / (2 * step)
            np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    _, frozen_weights, frozen_biases = network.gradients(X, y, decay, frozen=2)
    assert frozen_weights[:2] == [None, None] and frozen_biases[:2] == [None, None]
    np.testing.assert_allclose(frozen_weights[2], weight_grads[2], rtol=1e-13)


def test_softmax_output_is_stable_for_large_logits():
    network = Network([np.eye(2)], [np.zeros(2)], 3, np.random.default_rng(0))
    network.weights[-1] = np.array([[1e4, -1e4, 0.0], [0.0, 3e3, -5e3]])
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    hidden = expit(X)
    expected = log_softmax(hidden @ network.weights[-1], axis=1)
    np.testing.assert_allclose(network.predict_log_proba(X), expected, rtol=1e-12)
    probabilities = network.predict_proba(X)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_train_descends_the_loss_and_frozen_layers_stay():
    rng = np.random.default_rng(5)
    X = rng.random((60, 6))
    y = (X[:, 0] + X[:, 1] > X[:, 2] + X[:, 3]).astype(int)
    weights, biases = unroll(rbm_levels((6, 5), seed=6, scale=0.3))
    network = Network(weights, biases, 2, np.random.default_rng(7))
    before = network.loss(X, y)
    history = network.train(X, y, epochs=30, lr=0.5, momentum=0.5, batch_size=8)
    assert [row["epoch"] for row in history] == list(range(1, 31))
    assert network.loss(X, y) < 0.5 * before and history[-1]["loss"] < history[0]["loss"]
    assert all(np.any(v != 0) for v in network.velocities)

    frozen = Network(weights, biases, 2, np.random.default_rng(7))
    frozen.train(X, y, epochs=20, lr=0.1, momentum=0.5, batch_size=8, frozen=1)
    np.testing.assert_array_equal(frozen.weights[0], weights[0])
    np.testing.assert_array_equal(frozen.biases[0], biases[0])
    assert np.any(frozen.weights[1] != 0) and frozen.loss(X, y) < before

    broken = Network(weights, biases, 2, np.random.default_rng(7))
    broken.weights[-1][0, 0] = np.inf  # as a step too large leaves it
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="fine-tuning diverged in epoch 1"):
        broken.train(X, y, epochs=1, lr=0.1)


def test_a_network_needs_a_hidden_layer():
    with pytest.raises(DSLError, match="at least one hidden layer"):
        Network([], [], 2, np.random.default_rng(0))


@parametrize_with_checks(
    [DBNClassifier(hidden_layer_sizes=(8, 6), pretrain_epochs=2, epochs=40, learning_rate=0.3, random_state=0),
     DBNClassifier(hidden_layer_sizes=[16], pretrain_method="pcd", pretrain_epochs=5, epochs=20, finetune=False,
                   random_state=0)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16, y, test_size=0.2, random_state=0)


def test_classifies_digits(digits):
    X_train, X_test, y_train, y_test = digits
    model = DBNClassifier(hidden_layer_sizes=(64, 64), pretrain_epochs=5, epochs=15, random_state=0)
    assert model.fit(X_train, y_train).score(X_test, y_test) >= 0.9  # ten classes: chance is 0.1
    assert len(model.pretrain_history_) == 2 and len(model.pretrain_history_[0]) == 5 and len(model.history_) == 15
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]
    probabilities = model.predict_proba(X_test)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.predict(X_test), model.classes_[np.argmax(probabilities, axis=1)])


def test_labels_of_any_type_and_only_the_output_layer_without_finetuning(digits):
    X_train, X_test, y_train, y_test = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    model = DBNClassifier(hidden_layer_sizes=(32,), pretrain_epochs=3, epochs=5, finetune=False, random_state=1)
    model.fit(X_train[:400], names[y_train[:400]])
    assert list(model.classes_) == sorted(names) and model.n_features_in_ == 64
    assert set(model.predict(X_test)) <= set(names)
    again = DBNClassifier(hidden_layer_sizes=(32,), pretrain_epochs=3, epochs=1, finetune=False, random_state=1)
    again.fit(X_train[:400], names[y_train[:400]])
    np.testing.assert_array_equal(model.network_.weights[0], again.network_.weights[0])  # pretrained, then frozen


@pytest.mark.parametrize("sizes", [(), (3, 0), (2.5,), ["a"]])
def test_bad_hidden_layer_sizes_are_refused(sizes):
    with pytest.raises(ValueError, match="hidden_layer_sizes must be a non-empty sequence of positive ints"):
        DBNClassifier(hidden_layer_sizes=sizes).fit(np.zeros((4, 2)), [0, 1, 0, 1])
