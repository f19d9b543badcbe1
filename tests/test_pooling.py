"""Pooling layers as real layers: terms on p (tests/test_derivations.py enumerates those), p in samples and
features, the conditional of h given p, stacking on p (a convolutional DBN) and its pictures."""

import itertools

import numpy as np
import pytest

import pgmdsl
from pgmdsl.errors import DSLError, DSLUnsupportedError
from pgmdsl.evaluate import stack_lower_bound
from pgmdsl.runtime.pools import detectors_given_pools, pooling_layers, with_pools

import exact

PAIR = exact.TEST_MODELS["pooled_pair"]
TINY_DBN = dict(NV=8, K1=3, NW1=3, K2=4, NW2=2)


def pair(seed=0):
    c = pgmdsl.load(PAIR).compile(dtype="float64", seed=seed)
    rng = np.random.default_rng(seed)
    for name in c.params:
        c.params[name] = rng.normal(0, 0.8, c.params[name].shape)
    return c


def or_of_blocks(h, pool=2):
    rows, k, n, m = h.shape
    return h.reshape(rows, k, n // pool, pool, m // pool, pool).max(axis=(3, 5))


def test_sampled_pooling_units_are_the_or_of_their_blocks():
    c = pair()
    state = c.sample(50, steps=3, seed=1)
    assert state["p"].shape == (50, 1, 2, 2)
    assert np.array_equal(state["p"], or_of_blocks(state["h"]))
    assert state["p"].any() and not state["p"].all()  # both values occur: the check is not vacuous
    pt = c.sample(20, steps=2, seed=2, method="pt", temperatures=3)
    assert np.array_equal(pt["p"], or_of_blocks(pt["h"]))


def test_transform_gives_the_pooling_units_probabilities_by_enumeration():
    c = pair()
    rng = np.random.default_rng(3)
    v, g = rng.integers(0, 2, (4, 3)).astype(float), rng.integers(0, 2, (4, 2)).astype(float)
    means = c.module.mean_h(c.params, {"v": v, "g": g})
    got = with_pools(c, {"h": means})["p"]
    states = exact.layer_states(c.layers["h"], (2, 2))
    params = {k: np.asarray(x) for k, x in c.params.items()}
    for row in range(4):
        energies = exact.ENERGIES["pooled_pair"](
            params, {"v": np.repeat(v[row:row + 1], len(states), 0), "h": states,
                     "g": np.repeat(g[row:row + 1], len(states), 0)})
        weights = exact.log_normalise(-energies)
        expected = np.tensordot(weights, or_of_blocks(states), axes=(0, 0))
        np.testing.assert_allclose(got[row], expected, atol=1e-12)
    features = pgmdsl.load("conv_rbm", C=1, NV=4, K=2, NW=3, pool=2).compile(dtype="float64").transform(
        rng.integers(0, 2, (5, 1, 4, 4)).astype(float))
    assert set(features) == {"h", "p"} and features["p"].shape == (5, 2, 1, 1)
    np.testing.assert_allclose(features["p"][:, :, 0, 0], features["h"].sum(axis=(2, 3)), atol=1e-12)


def test_detectors_given_pools_draw_the_conditional_given_p():
    """h | v, g, p: off blocks all off, on blocks one unit on with P proportional to exp(E difference)."""
    c = pair(seed=4)
    rows = 20000
    v = np.array([1.0, 0.0, 1.0])
    g = np.array([0.0, 1.0])
    pooled = np.array([[[1.0, 0.0], [1.0, 1.0]]])
    state = {"v": np.repeat(v[None], rows, 0), "g": np.repeat(g[None], rows, 0)}
    h = detectors_given_pools(c, state, np.repeat(pooled[None], rows, 0), np.random.default_rng(5))
    assert np.array_equal(or_of_blocks(h), np.repeat(pooled[None], rows, 0))
    assert np.all(h.reshape(rows, 1, 2, 2, 2, 2).sum(axis=(3, 5)) <= 1)
    states = exact.layer_states(c.layers["h"], (2, 2))
    allowed = states[np.all(or_of_blocks(states) == pooled, axis=(1, 2, 3))]
    params = {k: np.asarray(x) for k, x in c.params.items()}
    energies = exact.ENERGIES["pooled_pair"](params, {"v": np.repeat(v[None], len(allowed), 0), "h": allowed,
                                                     "g": np.repeat(g[None], len(allowed), 0)})
    expected = np.tensordot(exact.log_normalise(-energies), allowed, axes=(0, 0))
    error = np.sqrt(expected * (1 - expected) / rows) + 1e-12
    assert np.all(np.abs(h.mean(axis=0) - expected) <= 5 * error)


@pytest.mark.parametrize("term, message", [
    ("-exp(c[k] * p[k, y, x])", "must enter its summand as a factor"),
    ("-(p[k, y, x] + b[k]) * c[k]", "must enter its summand as a factor"),
])
def test_a_pooling_unit_outside_a_product_is_refused_at_its_line(term, message):
    source = f"""
model bad(N: int = 4)
visible v[N, N]: binary
hidden h[1, N, N]: binary pooled(2) into p
param W[1] ~ normal(0, 0.1)
param b[1] = 0
param c[1] = 0
energy:
    interaction: -v[y, x] * W[k] * h[k, y, x]
    bias: -b[k] * h[k, y, x]
    odd: {term}
"""
    model = pgmdsl.parse(source)
    with pytest.raises(DSLUnsupportedError, match=message) as error:
        model.compile()
    assert error.value.span.line == 11


def test_pooling_layers_names_each_detector_and_block():
    assert pooling_layers(pair()) == {"p": ("h", (2, 2))}
    assert pooling_layers(pgmdsl.load("rbm", nv=3, nh=2).compile()) == {}


# ---- a convolutional DBN ----

def test_conv_dbn_stacks_its_second_level_on_the_pooling_units():
    model = pgmdsl.load("conv_dbn", **TINY_DBN)
    first, second = model.stack
    assert first.layer("p").shape == second.layer("v").shape == (3, 3, 3)
    with pytest.raises(DSLError, match="ends in pooling layer p of shape 3 x 3 x 3 but entry 2"):
        pgmdsl.parse('import "conv_rbm.dgm"\nmodel wrong()\nstack:\n    conv_rbm(1, 8, 3, 3, 2)\n'
                     '    conv_rbm(3, 6, 4, 3, 2)\n')


def test_conv_dbn_trains_greedily_samples_and_passes_pooling_units_up():
    stack = pgmdsl.load("conv_dbn", **TINY_DBN).compile(dtype="float64")
    rows = (np.random.default_rng(0).random((40, 1, 8, 8)) < 0.3).astype(float)
    histories = stack.fit(rows, epochs=1, batch_size=10, verbose=0)
    assert len(histories) == 2
    up = stack.up(0, rows)
    assert up.shape == (40, 3, 3, 3)
    h = np.asarray(stack.levels[0].transform(rows)["h"])  # the detectors' means; their pooling sums written here
    np.testing.assert_allclose(up, h.reshape(40, 3, 3, 2, 3, 2).sum(axis=(3, 5)), atol=1e-12)
    assert np.all(up <= 1 + 1e-12) and up.min() >= 0  # P(p = 1): a probability, as the next level's data must be
    assert stack.transform(rows).shape == (40, 4, 1, 1)
    samples = stack.sample(5, steps=3, seed=1)
    assert samples.shape == (5, 1, 8, 8) and np.all((samples >= 0) & (samples <= 1))
    with pytest.raises(DSLError, match="hands up its pooling layer p"):
        stack_lower_bound(stack, rows, 0.0)
    with pytest.raises(DSLError, match="also has p"):
        stack.fine_tune(rows, epochs=1)


def test_stack_filters_compose_the_levels_as_the_linear_receptive_field():
    """Level 2's drawn filter j is d(level-2 field of j at the origin)/d(image) with each pooling unit the mean of
    its block's level-1 fields (the linear map, probed pixel by pixel here)."""
    from pgmdsl.plots import stack_filters

    stack = pgmdsl.load("conv_dbn", **TINY_DBN).compile(dtype="float64")
    rng = np.random.default_rng(1)
    for level in stack.levels:
        level.params["W"] = rng.normal(0, 1, level.params["W"].shape)
    first, second = stack_filters(stack)
    W1, W2 = (np.asarray(level.params["W"]) for level in stack.levels)
    np.testing.assert_allclose(first, W1[:, 0])
    size = second.shape[1]
    assert second.shape == (4, size, size) and size == 2 * 2 + 3 - 1

    def level_2_field(image):
        field = np.zeros((3, 6, 6))
        for k, y, x in itertools.product(range(3), range(6), range(6)):
            field[k, y, x] = np.sum(image[y:y + 3, x:x + 3] * W1[k, 0])
        pooled = field.reshape(3, 3, 2, 3, 2).mean(axis=(2, 4))
        return np.einsum("jkrs,krs->j", W2, pooled[:, :2, :2])

    probed = np.zeros((4, size, size))
    for y, x in itertools.product(range(size), range(size)):
        image = np.zeros((8, 8))
        image[y, x] = 1.0
        probed[:, y, x] = level_2_field(image)
    np.testing.assert_allclose(second, probed, atol=1e-12)


def test_the_image_side_is_set_from_flat_data_with_one_channel():
    from pgmdsl import runs

    model, note = runs.fit_visible("conv_rbm", {"NW": 3}, 64)
    assert model.sizes["NV"] == 8 and model.sizes["C"] == 1 and note == "set NV=8 from the data (64 values per row)"
    with pytest.raises(DSLError, match=r"NV=8 would fit but: size 'NH' must be a positive integer"):
        runs.fit_visible("conv_rbm", {}, 64)  # 9x9 filters do not fit 8x8 images
    model, _ = runs.fit_visible("conv_dbn", {"NW1": 3, "NW2": 2}, 64)
    assert model.stack[0].sizes["NV"] == 8 and model.stack[1].sizes["NV"] == 3


# ---- sparsity and the command line ----

def test_a_sparsity_target_reaches_the_detectors_and_the_pooling_units_of_a_conv_rbm():
    """conv_rbm's bias term parses as (-b[k])*h[k, y, x]: its target must still move b (it once did nothing)."""
    from pgmdsl.runtime import recipes
    from pgmdsl.runtime.train import _hidden_biases

    c = pgmdsl.load("conv_rbm", C=1, NV=6, K=2, NW=3, pool=2).compile(dtype="float64")
    assert _hidden_biases(c) == {"h": ("b", (2, 3)), "p": ("b", (2, 3))}
    assert recipes.choose(c.model) is recipes.CONVOLUTIONAL
    rows = (np.random.default_rng(0).random((60, 1, 6, 6)) < 0.5).astype(float)
    means = {}
    for target in (None, 0.02, {"p": 0.02}):
        trained = pgmdsl.load("conv_rbm", C=1, NV=6, K=2, NW=3, pool=2).compile(dtype="float64")
        trained.fit(rows, method="cd", epochs=3, batch_size=10, verbose=0, sparsity_target=target, sparsity_cost=5.0)
        means[str(target)] = float(trained.transform(rows)["p"].mean())
    assert means["0.02"] < means["None"] - 0.1 and means["{'p': 0.02}"] < means["None"] - 0.1


def test_conv_dbn_from_the_command_line_draws_both_levels_filters(tmp_path, capsys):
    from pgmdsl.cli import main

    directory = tmp_path / "run"
    assert main(["train", "conv_dbn", "--data", "digits-binary", "--set", "K1=4", "--set", "NW1=3", "--set", "K2=4",
                 "--set", "NW2=2", "--epochs", "1", "--ais-runs", "4", "--ais-distributions", "50",
                 "--sparsity-target", "0.1", "-o", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "set NV=8 from the data" in out and out.count("sparsity target 0.1 (cost 1)") == 2
    assert "log p(v), level 1" in out and "reconstruction error" in out
    assert (directory / "weights.png").stat().st_size > 0
    stack = pgmdsl.load_trained(directory / "model.npz")
    assert stack.pooled and stack.sample(2, steps=2).shape == (2, 1, 8, 8)
    with pytest.raises(SystemExit):
        main(["train", "conv_rbm", "--data", "digits-binary", "--sparsity-target", "h=oops", "-o", str(tmp_path / "x")])
    assert "argument --sparsity-target: 'h=oops' is not a rate" in capsys.readouterr().err


def test_conv_dbn_graph_keeps_detectors_and_pooling_layers_apart():
    graph = pgmdsl.load("conv_dbn", **TINY_DBN).graph
    assert graph.nodes[("layer", "d1")]["shape"] == (3, 6, 6) and graph.nodes[("layer", "h1")]["shape"] == (3, 3, 3)
    assert graph.nodes[("layer", "h1")]["role"] == "pooled"
    assert set(graph.neighbors(("term", "conv_rbm1.pooling"))) == {("layer", "d1"), ("layer", "h1")}
    assert ("layer", "h1") in set(graph.neighbors(("term", "conv_rbm2.interaction")))
