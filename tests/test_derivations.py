"""The compiler's derivations against brute force on tiny models (float64).

Every expected value comes from the energy alone (written by hand in
tests/exact.py) by enumerating states: conditionals, free energies, the
statistics -dF/dtheta and the exact log-likelihood gradient. Gaussian layers
are checked against the closed form read off the (quadratic) energy.
"""

from functools import lru_cache

import numpy as np
import pytest
from scipy.special import expit, logsumexp

import pgmdsl
from pgmdsl import units
from pgmdsl.errors import DSLUnsupportedError
from pgmdsl.runtime.initialize import constrain

import exact
from standin import compile_for

TINY = {
    "relu_rbm": dict(nv=3, nh=2),
    "structured_crbm": dict(nx=2, ny=3, nh=2),
    "rbm": dict(nv=4, nh=3),
    "gbrbm": dict(nv=3, nh=3),
    "mcrbm": dict(nv=3, nm=2, nc=3),
    "conv_rbm": dict(C=1, NV=4, K=2, NW=3, pool=2),
    "bm": dict(n=4, nh=3),
    "dbm": dict(nv=3, n1=3, n2=2),
    "class_rbm": dict(nx=3, ny=3, nh=3),
    "crbm": dict(nv=3, nh=3, order=2),
    "pooled_pair": dict(NV=3, K=1, N=4, pool=2, M=2),  # terms on a pooling layer (tests/models)
}
TOLERANCE = 1e-9


@pytest.fixture(params=["numpy", "cupy"])
def backend(request):
    """Both backends pass the same exact tests."""
    return request.param


@lru_cache(maxsize=None)
def compiled(name, backend="numpy"):
    """A tiny model with random parameters; backend "cupy" runs the CuPy module on NumPy (the test seam)."""
    model = pgmdsl.load(exact.TEST_MODELS.get(name, name), **TINY[name])
    c = compile_for(model, backend, "float64")
    rng = np.random.default_rng(sum(map(ord, name)))
    for param in model.params:
        value = rng.normal(0, 0.6, param.shape)
        c.params[param.name] = constrain(param, value)
    return c


def params(c):
    return {k: np.array(v) for k, v in c.params.items()}


def pool_of(c, name):
    layer = c.model.layer(name)
    return layer.pooling.block if layer.pooling else None


def random_state(c, names, rows, rng):
    state = {}
    for name in names:
        info = c.layers[name]
        if info["unit"] is None:
            state[name] = rng.normal(size=(rows,) + info["shape"])
        elif not units.get(info["unit"]).enumerable:  # real-valued: a random start of the type (normal, half-normal)
            state[name] = units.get(info["unit"]).initial((rows,) + info["shape"], rng, np)
        else:
            choices = exact.layer_states(info, pool_of(c, name))
            state[name] = choices[rng.integers(0, len(choices), rows)]
    return state


def layer_names(c):
    return [n for n, info in c.layers.items() if info["role"] != "pooled"]


def discrete(c, name):
    return units.get(c.layers[name]["unit"]).enumerable


# models whose summed-out layers can be enumerated here (relu_rbm's are integrals: tests/test_real_units.py)
SUMMED_ENUMERABLE = [n for n in TINY if all(discrete(compiled(n), m) for m in compiled(n).marginalised)]


def energy_of(name):
    return exact.ENERGIES[name]


# ---- energy ----

@pytest.mark.parametrize("name", TINY)
def test_energy_matches_the_hand_written_energy(name, backend):
    c = compiled(name, backend)
    state = random_state(c, layer_names(c), 7, np.random.default_rng(1))
    np.testing.assert_allclose(c.energy(state), energy_of(name)(params(c), state), rtol=0, atol=TOLERANCE)


# ---- conditionals of discrete layers ----

CONDITIONALS = [(n, layer) for n in TINY for layer in compiled(n).sampled if discrete(compiled(n), layer)]


@pytest.mark.parametrize("name, layer", CONDITIONALS)
def test_discrete_conditional_matches_enumeration(name, layer, backend):
    c = compiled(name, backend)
    rng = np.random.default_rng(2)
    info = c.layers[layer]
    rest = random_state(c, layer_names(c), 3, rng)
    expected = []
    if info["update"] == "unitwise":
        for row in range(3):
            probabilities = np.zeros(info["shape"])
            for unit in np.ndindex(info["shape"]):
                pair = {k: np.repeat(v[row:row + 1], 2, axis=0) for k, v in rest.items()}
                pair[layer][(0,) + unit], pair[layer][(1,) + unit] = 0, 1
                e = energy_of(name)(params(c), pair)
                probabilities[unit] = expit(e[0] - e[1])
            expected.append(probabilities)
    else:
        choices = exact.layer_states(info, pool_of(c, layer))
        for row in range(3):
            state = {k: np.repeat(v[row:row + 1], len(choices), axis=0) for k, v in rest.items()}
            state[layer] = choices
            weights = exact.log_normalise(-energy_of(name)(params(c), state))
            expected.append(np.tensordot(weights, choices, axes=(0, 0)))
    others = {k: v for k, v in rest.items() if k != layer or info["update"] == "unitwise"}
    np.testing.assert_allclose(c.mean(layer, others), np.array(expected), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name, layer", [(n, l) for n, l in CONDITIONALS if compiled(n).layers[l]["update"] != "unitwise"])
def test_discrete_samples_have_the_conditional_mean(name, layer, backend):
    c = compiled(name, backend)
    rng = np.random.default_rng(3)
    rest = random_state(c, [n for n in layer_names(c) if n != layer], 1, rng)
    many = {k: np.repeat(v, 20000, axis=0) for k, v in rest.items()}
    draws = np.asarray(c.sample_layer(layer, many, rng))
    mean = np.asarray(c.mean(layer, rest))[0]
    assert set(np.unique(draws)) <= ({0.0, 1.0} if c.layers[layer]["unit"] != "spin" else {-1.0, 1.0})
    spread = np.sqrt(np.maximum(mean * (1 - mean), 1e-4) / 20000) if c.layers[layer]["unit"] != "spin" else 2 / np.sqrt(20000)
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * spread + 1e-3)


# ---- Gaussian layers: closed form read off the quadratic energy ----

GAUSSIAN = [(n, l) for n in TINY for l in compiled(n).sampled if compiled(n).layers[l]["unit"] == "gaussian"]


def quadratic_form(c, name, layer, rest, row):
    """E(x) = e0 + g.x + x^T H x / 2 along the layer, by exact finite differences (E is quadratic)."""
    n = int(np.prod(c.layers[layer]["shape"]))
    base = {k: v[row:row + 1] for k, v in rest.items()}

    def energy(x):
        state = dict(base)
        state[layer] = x.reshape((1,) + c.layers[layer]["shape"])
        return energy_of(name)(params(c), state)[0]

    zero, eye = energy(np.zeros(n)), np.eye(n)
    g = np.array([(energy(eye[i]) - energy(-eye[i])) / 2 for i in range(n)])
    H = np.array([[energy(eye[i] + eye[j]) - energy(eye[i]) - energy(eye[j]) + zero for j in range(n)] for i in range(n)])
    diagonal = np.array([energy(eye[i]) + energy(-eye[i]) - 2 * zero for i in range(n)])
    H[np.diag_indices(n)] = diagonal
    return g, H


@pytest.mark.parametrize("name, layer", GAUSSIAN)
def test_gaussian_conditional_has_the_closed_form_mean_and_covariance(name, layer, backend):
    c = compiled(name, backend)
    rng = np.random.default_rng(4)
    rest = random_state(c, [n for n in layer_names(c) if n != layer], 2, rng)
    means = np.asarray(c.mean(layer, rest)).reshape(2, -1)
    precision = np.asarray(getattr(c.module, f"precision_{layer}")(c.params, c._state(rest, [])))
    for row in range(2):
        g, H = quadratic_form(c, name, layer, rest, row)
        assert np.all(np.linalg.eigvalsh(H) > 0)
        np.testing.assert_allclose(means[row], -np.linalg.solve(H, g), rtol=0, atol=TOLERANCE)
        if precision.ndim == 3:  # full precision matrix, one per row
            np.testing.assert_allclose(precision[row], H, rtol=0, atol=TOLERANCE)
        else:
            assert np.allclose(H, np.diag(np.diag(H)), atol=TOLERANCE)
            q = np.broadcast_to(precision, (2,) + c.layers[layer]["shape"]).reshape(2, -1)[row]
            np.testing.assert_allclose(q, np.diag(H), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name, layer", GAUSSIAN)
def test_gaussian_samples_pass_a_moment_test(name, layer, backend):
    c = compiled(name, backend)
    rng = np.random.default_rng(5)
    rest = random_state(c, [n for n in layer_names(c) if n != layer], 1, rng)
    g, H = quadratic_form(c, name, layer, rest, 0)
    mean, covariance = -np.linalg.solve(H, g), np.linalg.inv(H)
    count = 40000
    draws = np.asarray(c.sample_layer(layer, exact.repeat_rows(rest, count), rng)).reshape(count, -1)
    standard_error = np.sqrt(np.diag(covariance) / count)
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * standard_error)
    np.testing.assert_allclose(np.cov(draws.T), covariance, atol=0.05 * np.abs(covariance).max())


# ---- free energy ----

@pytest.mark.parametrize("name", SUMMED_ENUMERABLE)
def test_free_energy_sums_out_the_marginalised_layers(name, backend):
    c = compiled(name, backend)
    rng = np.random.default_rng(6)
    kept = random_state(c, c.kept, 4, rng)
    hidden = {m: exact.layer_states(c.layers[m], pool_of(c, m)) for m in c.marginalised}
    expected = []
    for row in range(4):
        if not hidden:
            expected.append(energy_of(name)(params(c), {k: v[row:row + 1] for k, v in kept.items()})[0])
            continue
        states = exact.product_state(hidden)
        count = len(next(iter(states.values())))
        state = {**{k: np.repeat(v[row:row + 1], count, axis=0) for k, v in kept.items()}, **states}
        expected.append(-logsumexp(-energy_of(name)(params(c), state)))
    np.testing.assert_allclose(c.free_energy(kept), expected, rtol=0, atol=TOLERANCE)


# ---- gradients ----

def conditional_expectation(name, c, kept, weights):
    """sum over rows of weight * E[-dE/dtheta | kept row], marginalised layers enumerated."""
    hidden = {m: exact.layer_states(c.layers[m], pool_of(c, m)) for m in c.marginalised}
    total = None
    for row in range(len(weights)):
        single = {k: v[row:row + 1] for k, v in kept.items()}
        if hidden:
            states = exact.product_state(hidden)
            count = len(next(iter(states.values())))
            state = {**exact.repeat_rows(single, count), **states}
            posterior = exact.log_normalise(-energy_of(name)(params(c), state))
        else:
            state, posterior = single, np.ones(1)
        derivatives = exact.energy_derivatives(energy_of(name), params(c), state)
        contribution = {k: -weights[row] * v for k, v in exact.weighted(derivatives, posterior).items()}
        total = contribution if total is None else {k: total[k] + contribution[k] for k in total}
    return total


@pytest.mark.parametrize("name", SUMMED_ENUMERABLE)
def test_statistics_are_the_expected_energy_derivatives(name, backend):
    c = compiled(name, backend)
    rng = np.random.default_rng(7)
    kept = random_state(c, c.kept, 3, rng)
    weights = rng.uniform(0.2, 1.0, 3)
    expected = conditional_expectation(name, c, kept, weights / weights.sum())
    got = c.statistics(kept, weights)
    for param in c.model.params:
        np.testing.assert_allclose(np.broadcast_to(got[param.name], param.shape), expected[param.name],
                                   rtol=0, atol=TOLERANCE, err_msg=param.name)


FULLY_DISCRETE = ["rbm", "bm", "dbm", "class_rbm"]


def exact_gradient(name, c, data):
    """d/dtheta of the mean log-likelihood of the visible data, by enumeration of every state."""
    visible = [n for n in c.layers if c.layers[n]["role"] == "visible"]
    every = exact.product_state({n: exact.layer_states(c.layers[n], pool_of(c, n)) for n in layer_names(c)})
    log_joint = -energy_of(name)(params(c), every)
    derivatives = exact.energy_derivatives(energy_of(name), params(c), every)
    model = exact.weighted(derivatives, exact.log_normalise(log_joint))
    data_expectation = None
    for row in range(len(data[visible[0]])):
        match = np.all([np.all(every[v] == data[v][row], axis=tuple(range(1, every[v].ndim))) for v in visible], axis=0)
        posterior = np.where(match, np.exp(log_joint - logsumexp(log_joint[match])), 0.0)
        term = exact.weighted(derivatives, posterior)
        data_expectation = term if data_expectation is None else {k: data_expectation[k] + term[k] for k in term}
    rows = len(data[visible[0]])
    return {k: -data_expectation[k] / rows + model[k] for k in model}, every, log_joint


@pytest.mark.parametrize("name", FULLY_DISCRETE)
def test_gradient_is_the_exact_log_likelihood_gradient(name, backend):
    c = compiled(name, backend)
    rng = np.random.default_rng(8)
    visible = [n for n in c.layers if c.layers[n]["role"] == "visible"]
    data = random_state(c, visible, 5, rng)
    expected, every, log_joint = exact_gradient(name, c, data)
    # the data phase: kept layers beyond the visible ones are enumerated with their posterior weights
    kept_hidden = [n for n in c.kept if n not in visible]
    hidden_states = exact.product_state({n: exact.layer_states(c.layers[n]) for n in kept_hidden}) if kept_hidden else {}
    count = len(next(iter(hidden_states.values()))) if hidden_states else 1
    data_state = {**exact.repeat_rows(data, count), **exact.tile_rows(hidden_states, 5)}
    if kept_hidden:
        marginal = -np.array(c.free_energy(data_state)).reshape(5, count)
        data_weights = np.exp(marginal - logsumexp(marginal, axis=1, keepdims=True)).ravel()
    else:
        data_weights = None
    # the model phase: every kept configuration, weighted by its exact probability
    kept_states = exact.product_state({n: exact.layer_states(c.layers[n], pool_of(c, n)) for n in c.kept})
    model_weights = exact.log_normalise(-np.array(c.free_energy(kept_states)))
    got = c.gradient(data_state, kept_states, data_weights, model_weights)
    for param in c.model.params:
        np.testing.assert_allclose(got[param.name], constrain(param, expected[param.name]), rtol=0, atol=TOLERANCE,
                                   err_msg=param.name)


def test_conv_gradient_is_the_exact_log_likelihood_gradient():
    model = pgmdsl.load("conv_rbm", C=1, NV=3, K=1, NW=2, pool=2)
    c = model.compile(dtype="float64", cache=False)
    rng = np.random.default_rng(9)
    for param in model.params:
        c.params[param.name] = rng.normal(0, 0.6, param.shape)
    data = {"v": rng.integers(0, 2, (4, 1, 3, 3)).astype(float)}
    expected, _, _ = exact_gradient("conv_rbm", c, data)
    kept_states = {"v": exact.layer_states(c.layers["v"])}
    model_weights = exact.log_normalise(-np.array(c.free_energy(kept_states)))
    got = c.gradient(data, kept_states, None, model_weights)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=TOLERANCE, err_msg=name)


# ---- models the compiler must refuse ----

SLIDE_GBRBM = """
model slide(nv: int = 3, nh: int = 2)
visible v[nv]: gaussian
hidden  h[nh]: binary
param W[nv, nh] ~ normal(0, 0.01)
param a[nv] = 0
param b[nh] = 0
param log_sigma[nv] = 0
let sigma[i] = exp(log_sigma[i])
energy:
    containment: -(v[i] - a[i])^2 / (2 * sigma[i]^2)
    hidden_bias: -b[j] * h[j]
    interaction: -v[i] / sigma[i] * W[i,j] * h[j]
"""


def test_the_slides_negative_containment_is_rejected():
    model = pgmdsl.parse(SLIDE_GBRBM, filename="slide.dgm")
    with pytest.raises(DSLUnsupportedError) as failure:
        model.compile(cache=False)
    assert str(failure.value.message) == (
        "energy is not bounded below in gaussian layer v: coefficient of v[i]^2 is "
        "-1/(2*sigma[i]^2) in term 'containment' (it must be positive)"
    )


def test_the_tempered_free_energy_of_a_joint_gaussian_has_one_row_per_temperature():
    """mcRBM with x summed out at several beta: (betas, rows), each against the closed-form Gaussian integral."""
    c = pgmdsl.load("mcrbm", nv=3, nm=2, nc=2).compile(dtype="float64", seed=1)
    rng = np.random.default_rng(0)
    c.params = {name: rng.normal(size=value.shape) * 0.5 for name, value in c.params.items()}
    state = {"hm": rng.integers(0, 2, (4, 2)).astype(float), "hc": rng.integers(0, 2, (4, 2)).astype(float)}
    betas = np.array([0.3, 1.0, 2.5])
    got = c.free_energy(state, beta=betas, summed=("x",))
    assert got.shape == (3, 4)
    assert c.free_energy(state, summed=("x",)).shape == (4,)
    W, R, bm, bc = (c.params[n] for n in ("W", "R", "bm", "bc"))
    for k, beta in enumerate(betas):
        for row in range(4):
            hm, hc = state["hm"][row], state["hc"][row]
            precision = beta * (np.eye(3) + R @ np.diag(hc) @ R.T)  # E = x^2/2 - x W hm - bm hm + hc (x R)^2/2 - bc hc
            field = beta * (W @ hm)
            log_z = (beta * (bm @ hm + bc @ hc) + field @ np.linalg.solve(precision, field) / 2
                     - np.linalg.slogdet(precision)[1] / 2 + 1.5 * np.log(2 * np.pi))
            assert got[k, row] == pytest.approx(-log_z, rel=1e-10, abs=1e-10)
