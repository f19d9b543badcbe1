"""Up-down fine-tuning of a DBN (runtime.recipes.updown) against answers computed here by hand.

The delta rule is checked against finite differences of log p(x | h) and
log q(h | x) written out for binary units; the fine-tuning against the exact
log-likelihood of a tiny DBN, every hidden state of every level enumerated.
"""

import itertools

import numpy as np
import pytest
from scipy.special import log_expit, logsumexp

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.runtime.datasets import bars_and_stripes
from pgmdsl.runtime.recipes import updown
from pgmdsl.runtime.stack import CompiledStack


def binary_states(n: int) -> np.ndarray:
    return np.array(list(itertools.product((0.0, 1.0), repeat=n)))


def log_bernoulli(x, field):
    """log of prod_i sigmoid(field_i)^x_i sigmoid(-field_i)^(1 - x_i), for every row of x against every row of field."""
    return x @ log_expit(field).T + (1 - x) @ log_expit(-field).T


def exact_log_likelihood(stack, data) -> float:
    """Mean log p(v) of the rows of `data` under a binary DBN of rbm.dgm levels, by enumeration.

    p(v) = sum over h1 .. hL of p(v | h1) ... p(h_{L-2} | h_{L-1}) p_top(h_{L-1}), the top RBM's marginal
    over its visible layer normalised over all its joint states.
    """
    top = stack.levels[-1].params
    below, above = binary_states(len(top["a"])), binary_states(len(top["b"]))
    negative_energy = (below @ top["a"])[:, None] + (above @ top["b"])[None, :] + below @ top["W"] @ above.T
    log_prior = logsumexp(negative_energy, axis=1) - logsumexp(negative_energy)
    states = below
    for number in reversed(range(len(stack.levels) - 1)):
        p = stack.levels[number].params
        rows = data if number == 0 else binary_states(len(p["a"]))
        log_prior = logsumexp(log_bernoulli(rows, p["a"] + states @ p["W"].T) + log_prior[None, :], axis=1)
        states = rows
    return float(np.mean(log_prior))


def finite_differences(function, params: dict, step: float = 1e-6) -> dict:
    result = {}
    for name, value in params.items():
        gradient = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            original = value[index]
            value[index] = original + step
            up = function(params)
            value[index] = original - step
            down = function(params)
            value[index] = original
            gradient[index] = (up - down) / (2 * step)
        result[name] = gradient
    return result


def test_the_delta_rule_is_the_gradient_of_the_directed_conditionals():
    rng = np.random.default_rng(3)
    level = pgmdsl.load("rbm", nv=4, nh=3).compile(dtype="float64", seed=0)
    params = {name: rng.normal(0, 1, value.shape) for name, value in level.params.items()}
    x = (rng.random((5, 4)) < 0.5).astype(float)
    h = (rng.random((5, 3)) < 0.5).astype(float)
    probabilities = rng.random((5, 4))  # the sleep phase's bottom layer: conditional means, not states
    weights = rng.random(5)

    def log_p(p):  # sum over rows of weight * log p(x | h)
        return float(np.sum(weights * np.diag(log_bernoulli(x, p["a"] + h @ p["W"].T))))

    def log_q(p):  # sum over rows of weight * log q(h | probabilities)
        return float(np.sum(weights * np.diag(log_bernoulli(h, p["b"] + probabilities @ p["W"]))))

    generative = updown.generative_delta(level, params, x, h, weights)
    recognition = updown.recognition_delta(level, params, probabilities, h, weights)
    for delta, expected in ((generative, finite_differences(log_p, params)),
                            (recognition, finite_differences(log_q, params))):
        for name in params:
            np.testing.assert_allclose(delta[name], expected[name], atol=1e-7)


def greedy_stack(seed: int):
    """A 9-6-6-8 DBN trained greedily on 3x3 bars and stripes (its 14 images, 20 times each), and the images."""
    images = bars_and_stripes(3, duplicates=False)
    stack = pgmdsl.load("dbn", nv=9, n1=6, n2=6, n3=8).compile(dtype="float64", seed=seed)
    stack.fit(np.tile(images, (20, 1)), epochs=300, lr=0.05, method="pcd", batch_size=10, seed=seed)
    return stack, images


def test_untying_copies_the_generative_parameters_and_leaves_both_passes_unchanged():
    stack, images = greedy_stack(0)
    levels = len(stack.levels)
    ups, downs, rows = [], [], images
    for number in range(levels):
        ups.append(stack.up(number, rows))
        downs.append(stack.down(number, ups[-1]))
        rows = ups[-1]
    updown.UpDown(stack, lr=0.05, rng=np.random.default_rng(0))
    assert stack.recognition[-1] is None  # the top level stays one undirected model
    rows = images
    for number in range(levels):
        np.testing.assert_array_equal(stack.up(number, rows), ups[number])
        np.testing.assert_array_equal(stack.down(number, ups[number]), downs[number])
        rows = ups[number]
    for number in range(levels - 1):
        generative, recognition = stack.levels[number].params, stack.recognition[number]
        assert all(recognition[name] is not generative[name] for name in generative)
    updown.fine_tune(stack, np.tile(images, (20, 1)), epochs=1, lr=0.05, k=1, batch_size=10, seed=0)
    tied = stack.levels[0].module.mean_h(stack.levels[0].params, {"v": images})
    assert np.max(np.abs(stack.up(0, images) - tied)) > 1e-3  # the two sets moved apart


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fine_tuning_raises_the_exact_log_likelihood_of_the_training_data(seed):
    stack, images = greedy_stack(seed)
    before = exact_log_likelihood(stack, images)
    history = updown.fine_tune(stack, np.tile(images, (20, 1)), epochs=100, lr=0.05, k=(3, 6, 10), batch_size=10,
                               seed=seed)
    after = exact_log_likelihood(stack, images)
    assert after > before + 0.1, (before, after)
    assert after < -np.log(len(images))  # no model of 14 images does better than uniform over them
    assert [row["epoch"] for row in history] == list(range(1, 101))
    assert [row["k"] for row in history] == [3] * 34 + [6] * 33 + [10] * 33


def test_mistakes_are_one_line_errors():
    stack, images = pgmdsl.load("dbn", nv=4, n1=3, n2=3, n3=2).compile(dtype="float64"), np.ones((4, 4))
    for options, said in (({"lr": 0.0}, "lr must be a positive number"), ({"k": (3, 0)}, "k must be"),
                          ({"epochs": 2.5}, "epochs must be a positive integer")):
        with pytest.raises(DSLError, match=said):
            updown.fine_tune(stack, images, **options)
    gaussian = pgmdsl.load("gbrbm", nv=4, nh=3).compile(dtype="float64")
    real = CompiledStack(None, [gaussian, pgmdsl.load("rbm", nv=3, nh=2).compile(dtype="float64")])
    with pytest.raises(DSLError, match="layer 'v' of gbrbm has gaussian units"):
        updown.fine_tune(real, images)
