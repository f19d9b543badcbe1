"""The packed fused trainer: runtime.packing recognises bipartite binary models
with affine conditionals and packs their parameters into one matrix;
runtime.fused trains on it, and runtime.train uses it when it may.

Checked against independent answers:
- which models pack, and the reason of those that do not;
- the packed matrix of an RBM built by hand, and the packed fields of every
  packing model against the generated module's field functions;
- training on the fused path against the generic path (Trainer.update), which
  makes the same random draws in the same order: float64 parameters agree to
  1e-10 after a few epochs;
- divergence, exact resume, and the CuPy backend's code (on NumPy) on the fused path.
"""

import sys
import types

import numpy as np
import pytest

import pgmdsl
from pgmdsl import resources
from pgmdsl.codegen.load import load_module
from pgmdsl.compiler import generate_source
from pgmdsl.runtime import fused as fused_module
from pgmdsl.runtime.compiled import Compiled
from pgmdsl.runtime.fused import FusedStep, fused_reason
from pgmdsl.runtime.options import options as make_options
from pgmdsl.runtime.packing import NotPacked, packed_layout, why_not_packed
from pgmdsl.runtime.train import Trainer, TrainingDiverged

import exact

ROWS = 37  # with batch_size=10: three full minibatches and a partial one of 7 rows
BATCH = 10
EPOCHS = 3
AGREE = dict(rtol=0, atol=1e-10)


# ---- helpers ----

def rbm(nv=12, nh=5, dtype="float64", backend="numpy"):
    return pgmdsl.load("rbm", nv=nv, nh=nh).compile(backend=backend, dtype=dtype)


def user(source, name="user"):
    return pgmdsl.parse(source, filename=f"{name}.dgm").compile(dtype="float64", cache=False)


def randomise(c, seed=0, scale=0.5):
    """Random parameters of every shape, so that no entry of the packed matrix is accidentally right."""
    rng = np.random.default_rng(seed)
    for param in c.model.params:
        c.params[param.name] = c.xp.asarray(rng.normal(0, scale, param.shape))
    return c


def observed(c):
    return [n for n, info in c.layers.items() if info["role"] == "visible"]


def units(info, rows, rng):
    """Random values a layer can take: 0/1 (binary), -1/+1 (spin) or one-hot rows over the last axis (onehot)."""
    shape = (rows,) + tuple(info["shape"])
    if info["unit"] == "onehot":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    bits = rng.integers(0, 2, shape).astype(float)
    return 2 * bits - 1 if info["unit"] == "spin" else bits


def binary_data(c, rows=ROWS, seed=1):
    rng = np.random.default_rng(seed)
    return {n: units(c.layers[n], rows, rng) for n in observed(c)}


def binary_state(c, rows, seed):
    rng = np.random.default_rng(seed)
    return {n: units(info, rows, rng) for n, info in c.layers.items()}


def host(params):
    return {k: np.array(v) for k, v in params.items()}


def train(c, data, fused, **given):
    """Train with the Trainer as fit does, checking which path it took; the parameters after."""
    given = {**dict(epochs=EPOCHS, batch_size=BATCH, lr=0.1, seed=3, verbose=0), **given}
    trainer = Trainer(c, data, fused=fused, **given)
    assert (trainer.fused is not None) == fused, trainer.why_generic
    trainer.start()
    trainer.run()
    return host(c.params)


def fused_and_generic(make, data, **given):
    """The parameters after training on each path from the same start; both must have moved from it."""
    start = host(make().params)
    fused = train(make(), data, True, **given)
    generic = train(make(), data, False, **given)
    assert fused.keys() == generic.keys() == start.keys()
    assert any(not np.allclose(generic[k], start[k], rtol=0, atol=1e-3) for k in start), "training changed nothing"
    return fused, generic


def assert_same(got, expected, **tolerance):
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], **(tolerance or AGREE), err_msg=name)


def loaded_step(c, **given):
    """A FusedStep holding the model's parameters."""
    step = FusedStep(c, make_options(batch_size=BATCH, **given), new_chains=None)
    step.load(c.params, {}, None)
    return step


def check_packed_fields(c, seed=5, rows=6):
    """x = [observed units, 1] @ P gives every hidden layer's field, [hidden units, 1] @ P.T every observed one's,
    as the generated module's field functions compute them."""
    step = loaded_step(c)
    layout = step.layout
    P = 2 * np.asarray(step.P)  # FusedStep keeps half of the packed matrix
    assert P.shape == (layout.n_observed + 1, layout.n_hidden + 1)
    state = binary_state(c, rows, seed)
    ones = np.ones((rows, 1))

    def flat(segments):
        return np.concatenate([state[s.layer].reshape(rows, -1) for s in segments] + [ones], axis=1)

    for segments, fields in ((layout.hidden, flat(layout.observed) @ P), (layout.observed, flat(layout.hidden) @ P.T)):
        assert {s.layer for s in segments} <= set(c.layers)
        for s in segments:
            expected = np.asarray(getattr(c.module, f"field_{s.layer}")(c.params, state))
            expected = np.broadcast_to(expected, (rows,) + s.shape)
            np.testing.assert_allclose(fields[:, s.start:s.stop].reshape((rows,) + s.shape), expected,
                                       rtol=0, atol=1e-12, err_msg=f"field of {s.layer}")
    # every unit of both sides is in exactly one segment
    assert sorted(s.layer for s in layout.observed + layout.hidden) == sorted(
        n for n, info in c.layers.items() if info["role"] in ("visible", "hidden"))
    return layout


# ---- 1. which standard models pack ----

SIZES = exact.SMALLEST_SIZES

STANDARD_REASONS = {
    "rbm": None,
    "gbrbm": "layer 'v' has gaussian units",
    "mcrbm": "layer 'x' has gaussian units",
    "conv_rbm": "layer 'p' is pooled, not visible or hidden",
    "bm": "the hidden class is not summed out analytically",
    "dbm": "the observed layers are not one colour class",
    "dbm3": "the observed layers are not one colour class",
    "class_rbm": None,
    "crbm": "layer 'past' is input, not visible or hidden",
    "relu_rbm": "layer 'h' has relu units",
    "structured_crbm": "layer 'x' is input, not visible or hidden",
}


def test_every_standard_model_is_covered():
    assert set(STANDARD_REASONS) == set(SIZES) == set(resources.standard_models()) - {"dbn", "conv_dbn"}


@pytest.mark.parametrize("name", STANDARD_REASONS)
def test_standard_model_packs_or_says_why_not(name):
    c = pgmdsl.load(name, **SIZES[name]).compile(dtype="float64")
    expected = STANDARD_REASONS[name]
    reason = why_not_packed(c)
    if expected is None:
        assert reason is None
        assert isinstance(packed_layout(c).blocks, tuple)
    else:
        assert reason is not None and expected in reason, reason
        with pytest.raises(NotPacked, match="."):
            packed_layout(c)
        options = make_options()
        assert fused_reason(c, options) == reason


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_class_rbm_trains_the_same_on_both_paths(method):
    """The standard library's classification RBM: binary pixels and a one-hot label on the packed path."""
    def make():
        return randomise(pgmdsl.load("class_rbm", nx=6, ny=3, nh=4).compile(dtype="float64"), seed=13)

    c = make()
    check_packed_fields(c)
    fused, generic = fused_and_generic(make, binary_data(c), method=method, k=2, momentum=0.5)
    assert_same(fused, generic)


def test_every_level_of_a_dbn_packs():
    stack = pgmdsl.load("dbn", nv=4, n1=3, n2=3, n3=2).compile(dtype="float64")
    assert len(stack.levels) == 3
    for level in stack.levels:
        assert why_not_packed(level) is None


# ---- 2. the packed matrix of an RBM ----

def test_rbm_packed_matrix_is_couplings_and_biases_by_hand():
    c = randomise(rbm(nv=6, nh=4))
    W, a, b = (np.array(c.params[k]) for k in "Wab")
    by_hand = np.zeros((7, 5))
    by_hand[:6, :4], by_hand[:6, 4], by_hand[6, :4] = W, a, b
    step = loaded_step(c)
    np.testing.assert_array_equal(step.P, by_hand / 2)
    layout = step.layout
    assert layout.shape == (7, 5) and layout.n_observed == 6 and layout.n_hidden == 4
    assert {blk.param: (blk.transposed, blk.sign) for blk in layout.blocks} == {
        "W": (False, -1), "a": (False, -1), "b": (False, -1)}


def test_rbm_packed_fields_are_the_generated_fields_and_the_hand_ones():
    c = randomise(rbm(nv=6, nh=4), seed=2)
    check_packed_fields(c)
    # and by hand: field_h = b + v W, field_v = a + h W^T
    W, a, b = (np.array(c.params[k]) for k in "Wab")
    state = binary_state(c, 5, seed=9)
    P = 2 * np.asarray(loaded_step(c).P)
    x = np.hstack([state["v"], np.ones((5, 1))])
    y = np.hstack([state["h"], np.ones((5, 1))])
    np.testing.assert_allclose((x @ P)[:, :4], b + state["v"] @ W, rtol=0, atol=1e-12)
    np.testing.assert_allclose((y @ P.T)[:, :6], a + state["h"] @ W.T, rtol=0, atol=1e-12)


def test_load_then_store_round_trips_parameters_and_momentum_exactly():
    c = randomise(rbm(nv=6, nh=4), seed=4)
    rng = np.random.default_rng(8)
    velocity = {k: rng.normal(size=v.shape) for k, v in c.params.items()}
    step = FusedStep(c, make_options(batch_size=BATCH, momentum=0.5), new_chains=None)
    step.load(c.params, velocity, None)
    params_back = {k: np.full_like(v, np.nan) for k, v in c.params.items()}
    velocity_back = {k: np.full_like(v, np.nan) for k, v in velocity.items()}
    assert step.store(params_back, velocity_back) is None  # CD keeps no chains
    for name in c.params:
        np.testing.assert_array_equal(params_back[name], c.params[name])
        np.testing.assert_array_equal(velocity_back[name], velocity[name])


# ---- 3. user models that pack ----

PACKING = {
    # (a) the coupling's parameter indexed hidden-first: stored transposed
    "transposed": """model transposed(n: int = 5, m: int = 3)
visible v[n]: binary
hidden h[m]: binary
param U[m, n] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
param b[m] ~ normal(0, 0.5)
energy = -a[i]*v[i] - b[j]*h[j] - h[j]*U[j,i]*v[i]""",
    # (b) positive signs: the packed blocks are -W and -b
    "positive": """model positive(n: int = 5, m: int = 3)
visible v[n]: binary
hidden h[m]: binary
param W[n, m] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
param b[m] ~ normal(0, 0.5)
energy = -a[i]*v[i] + b[j]*h[j] + v[i]*W[i,j]*h[j]""",
    # (c) two visible layers of different sizes coupled to one hidden layer (declared out of alphabetical order,
    # with the summands in yet another order: the segments and draws must follow the model's order)
    "two_visible": """model two_visible(n1: int = 3, n2: int = 2, m: int = 4)
visible pixels[n1]: binary
visible label[n2]: binary
hidden h[m]: binary
param W1[n1, m] ~ normal(0, 0.5)
param W2[n2, m] ~ normal(0, 0.5)
param a1[n1] ~ normal(0, 0.5)
param a2[n2] ~ normal(0, 0.5)
param b[m] ~ normal(0, 0.5)
energy = -pixels[i]*W1[i,j]*h[j] - a2[i]*label[i] - label[i]*W2[i,j]*h[j] - a1[i]*pixels[i] - b[j]*h[j]""",
    # (d) a matrix-shaped visible layer, with a matrix-shaped bias (which weight decay reaches)
    "matrix_visible": """model matrix_visible(r: int = 2, s: int = 3, m: int = 4)
visible v[r, s]: binary
hidden h[m]: binary
param W[r, s, m] ~ normal(0, 0.5)
param a[r, s] ~ normal(0, 0.5)
param b[m] ~ normal(0, 0.5)
energy = -v[x,y]*W[x,y,j]*h[j] - a[x,y]*v[x,y] - b[j]*h[j]""",
    # (e) a matrix-shaped hidden layer whose coupling is indexed hidden-first
    "matrix_hidden": """model matrix_hidden(n: int = 5, r: int = 2, s: int = 2)
visible v[n]: binary
hidden h[r, s]: binary
param U[r, s, n] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
param b[r, s] ~ normal(0, 0.5)
energy = -a[i]*v[i] - b[k,l]*h[k,l] - h[k,l]*U[k,l,i]*v[i]""",
    # the hidden layer declared before the visible one, and the summands in another order than the rbm's
    "hidden_first": """model hidden_first(n: int = 5, m: int = 3)
hidden h[m]: binary
visible v[n]: binary
param W[n, m] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
param b[m] ~ normal(0, 0.5)
energy = -b[j]*h[j] - v[i]*W[i,j]*h[j] - a[i]*v[i]""",
    # (f) two hidden layers of different sizes, declared out of alphabetical order
    "two_hidden": """model two_hidden(n: int = 4, m1: int = 3, m2: int = 2)
visible v[n]: binary
hidden z[m1]: binary
hidden y[m2]: binary
param W[n, m1] ~ normal(0, 0.5)
param U[n, m2] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
param bz[m1] ~ normal(0, 0.5)
param by[m2] ~ normal(0, 0.5)
energy = -v[i]*W[i,j]*z[j] - v[i]*U[i,k]*y[k] - a[i]*v[i] - bz[j]*z[j] - by[k]*y[k]""",
    # (g) spin units on both sides (means tanh, draws +-1)
    "spins": """model spins(n: int = 5, m: int = 3)
visible v[n]: spin
hidden h[m]: spin
param W[n, m] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
param b[m] ~ normal(0, 0.5)
energy = -a[i]*v[i] - b[j]*h[j] - v[i]*W[i,j]*h[j]""",
    # (h) groups of one-hot hidden units (softmax means, categorical draws), beside binary visible units
    "onehot_hidden": """model onehot_hidden(n: int = 5, g: int = 2, k: int = 3)
visible v[n]: binary
hidden h[g, k]: onehot
param W[n, g, k] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
param b[g, k] ~ normal(0, 0.5)
energy = -a[i]*v[i] - b[x,y]*h[x,y] - v[i]*W[i,x,y]*h[x,y]""",
    # (i) a one-hot visible layer beside a binary one and a spin hidden layer: every unit type on one side
    "mixed": """model mixed(n: int = 4, c: int = 3, m: int = 3)
visible v[n]: binary
visible y[c]: onehot
hidden h[m]: spin
param W[n, m] ~ normal(0, 0.5)
param U[c, m] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
param d[c] ~ normal(0, 0.5)
param b[m] ~ normal(0, 0.5)
energy = -a[i]*v[i] - d[k]*y[k] - b[j]*h[j] - v[i]*W[i,j]*h[j] - y[k]*U[k,j]*h[j]""",
}

# what the layout must say about each: parameter -> (transposed, sign)
PACKING_BLOCKS = {
    "transposed": {"U": (True, -1), "a": (False, -1), "b": (False, -1)},
    "positive": {"W": (False, 1), "a": (False, -1), "b": (False, 1)},
    "two_visible": {p: (False, -1) for p in ("W1", "W2", "a1", "a2", "b")},
    "matrix_visible": {p: (False, -1) for p in ("W", "a", "b")},
    "matrix_hidden": {"U": (True, -1), "a": (False, -1), "b": (False, -1)},
    "two_hidden": {p: (False, -1) for p in ("W", "U", "a", "bz", "by")},
    "hidden_first": {p: (False, -1) for p in ("W", "a", "b")},
    "spins": {p: (False, -1) for p in ("W", "a", "b")},
    "onehot_hidden": {p: (False, -1) for p in ("W", "a", "b")},
    "mixed": {p: (False, -1) for p in ("W", "U", "a", "d", "b")},
}


@pytest.mark.parametrize("name", PACKING)
def test_user_model_packs_and_its_packed_fields_are_the_generated_ones(name):
    c = randomise(user(PACKING[name], name), seed=len(name))
    assert why_not_packed(c) is None
    layout = check_packed_fields(c)
    assert {blk.param: (blk.transposed, blk.sign) for blk in layout.blocks} == PACKING_BLOCKS[name]


def test_positive_sign_packs_minus_the_parameter():
    c = randomise(user(PACKING["positive"], "positive"), seed=6)
    P = 2 * np.asarray(loaded_step(c).P)
    np.testing.assert_array_equal(P[:5, :3], -np.asarray(c.params["W"]))
    np.testing.assert_array_equal(P[5, :3], -np.asarray(c.params["b"]))
    np.testing.assert_array_equal(P[:5, 3], np.asarray(c.params["a"]))


def test_transposed_coupling_packs_its_transpose():
    c = randomise(user(PACKING["transposed"], "transposed"), seed=7)
    P = 2 * np.asarray(loaded_step(c).P)
    np.testing.assert_array_equal(P[:5, :3], np.asarray(c.params["U"]).T)


TRAINING = [
    dict(method="cd", k=1, momentum=0.5, weight_decay=0.01),
    dict(method="pcd", k=2, momentum=0.5, weight_decay=0.01, chains=6),
]


@pytest.mark.parametrize("given", TRAINING, ids=lambda g: g["method"])
@pytest.mark.parametrize("name", PACKING)
def test_user_model_trains_the_same_on_both_paths(name, given):
    def make():
        return randomise(user(PACKING[name], name), seed=11)

    data = binary_data(make())
    fused, generic = fused_and_generic(make, data, **given)
    assert_same(fused, generic)


# Entries of the packed matrix that belong to no parameter (a model without a
# visible bias has no observed-bias column; two visible layers each coupled to
# a different hidden layer leave the cross blocks empty) must stay zero, or they
# grow into phantom biases and couplings (a bug these tests found).
NO_PARAMETER_ENTRIES = {
    "no_visible_bias": """model no_visible_bias(n: int = 5, m: int = 3)
visible v[n]: binary
hidden h[m]: binary
param W[n, m] ~ normal(0, 0.5)
param b[m] ~ normal(0, 0.5)
energy = -v[i]*W[i,j]*h[j] - b[j]*h[j]""",
    "no_hidden_bias": """model no_hidden_bias(n: int = 5, m: int = 3)
visible v[n]: binary
hidden h[m]: binary
param W[n, m] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
energy = -v[i]*W[i,j]*h[j] - a[i]*v[i]""",
    "two_pairs": """model two_pairs(n: int = 3, m: int = 2)
visible v1[n]: binary
visible v2[n]: binary
hidden h1[m]: binary
hidden h2[m]: binary
param W[n, m] ~ normal(0, 0.5)
param U[n, m] ~ normal(0, 0.5)
param a1[n] ~ normal(0, 0.5)
param a2[n] ~ normal(0, 0.5)
param b1[m] ~ normal(0, 0.5)
param b2[m] ~ normal(0, 0.5)
energy = -v1[i]*W[i,j]*h1[j] - v2[i]*U[i,j]*h2[j] - a1[i]*v1[i] - a2[i]*v2[i] - b1[j]*h1[j] - b2[j]*h2[j]""",
}


@pytest.mark.parametrize("name", NO_PARAMETER_ENTRIES)
def test_packed_entries_without_a_parameter_stay_out_of_training(name):
    def make():
        return randomise(user(NO_PARAMETER_ENTRIES[name], name), seed=12)

    c = make()
    assert why_not_packed(c) is None
    check_packed_fields(c)  # at the start the empty entries are zero: the fields agree
    fused, generic = fused_and_generic(make, binary_data(c), method="pcd", k=1, lr=0.5)
    assert_same(fused, generic)


# ---- 4. user models that do not pack ----

HEAD = """visible v[n]: binary
hidden h[m]: binary
"""

NOT_PACKING = {
    "symmetric": ("""model symmetric(n: int = 4, m: int = 4)
""" + HEAD + """param W[n, m] ~ normal(0, 0.5) : symmetric
param b[m] = 0
energy = -v[i]*W[i,j]*h[j] - b[j]*h[j]""", "parameter 'W' is constrained (symmetric)"),
    "used_twice": ("""model used_twice(n: int = 4, m: int = 4)
""" + HEAD + """param W[n, m] ~ normal(0, 0.5)
param b[m] = 0
energy = -v[i]*W[i,j]*h[j] - b[j]*h[j] - b[i]*v[i]""", "parameter 'b' appears in more than one summand"),
    "shift": ("""model shift(n: int = 4, m: int = 3)
""" + HEAD + """param W[n, m] ~ normal(0, 0.5)
param S[n - 1, m] ~ normal(0, 0.5)
param b[m] = 0
energy = -v[i]*W[i,j]*h[j] - b[j]*h[j] - v[i+1]*S[i,j]*h[j]""", "has an index expression (v[i+1])"),
    "softplus": ("""model softplus_bias(n: int = 4, m: int = 3)
""" + HEAD + """param W[n, m] ~ normal(0, 0.5)
param b[m] = 0
energy = -v[i]*W[i,j]*h[j] - softplus(b[j])*h[j]""",
                 "term 'b_h' is not a product of one parameter and layer units (with sign +1 or -1)"),
    "constant": ("""model constant(n: int = 4, m: int = 3)
""" + HEAD + """param W[n, m] ~ normal(0, 0.5)
param b[m] = 0
energy = -2*v[i]*W[i,j]*h[j] - b[j]*h[j]""",
                 "term 'v_W_h' is not a product of one parameter and layer units (with sign +1 or -1)"),
    "same_units": ("""model same_units(n: int = 4, m: int = 3)
""" + HEAD + """param W[n, m] ~ normal(0, 0.5)
param U[n, m] ~ normal(0, 0.5)
param b[m] = 0
energy = -v[i]*W[i,j]*h[j] - v[i]*U[i,j]*h[j] - b[j]*h[j]""", "parameters 'W' and 'U' act on the same units"),
    "gaussian_hidden": ("""model gaussian_hidden(n: int = 4, m: int = 3)
visible v[n]: binary
hidden h[m]: gaussian
param W[n, m] ~ normal(0, 0.5)
energy = h[j]*h[j]/2 - v[i]*W[i,j]*h[j]""", "layer 'h' has gaussian units"),
    "three_classes": ("""model three_classes(n: int = 3, m: int = 2)
visible v[n]: binary
hidden g[m]: binary
hidden h[m]: binary
param W[n, m] ~ normal(0, 0.5)
param U[n, m] ~ normal(0, 0.5)
param Q[m, m] ~ normal(0, 0.5)
energy = -v[i]*W[i,j]*g[j] - v[i]*U[i,j]*h[j] - g[j]*Q[j,k]*h[k]""", "the Gibbs schedule has 3 colour classes, not 2"),
}


@pytest.mark.parametrize("name", NOT_PACKING)
def test_user_model_that_does_not_pack_says_why(name):
    source, fragment = NOT_PACKING[name]
    c = user(source, name)
    reason = why_not_packed(c)
    assert reason is not None and fragment in reason, reason
    trainer = Trainer(c, binary_data(c), verbose=0)
    assert trainer.fused is None and trainer.why_generic == reason


# ---- 5. the fused path trains an RBM as the generic one does ----

RBM_OPTIONS = {
    "cd1": dict(method="cd", k=1),
    "cd3": dict(method="cd", k=3),
    "pcd1": dict(method="pcd", k=1),
    "pcd3": dict(method="pcd", k=3),
    "cd_momentum_decay": dict(method="cd", k=1, momentum=0.9, weight_decay=0.01),
    "pcd_momentum_decay": dict(method="pcd", k=2, momentum=0.5, weight_decay=0.02),
    "pcd_fewer_chains": dict(method="pcd", k=1, chains=7, momentum=0.5),
    "pcd_more_chains": dict(method="pcd", k=2, chains=16),
    "cd_ignores_chains": dict(method="cd", k=1, chains=7),
    "pcd_batch_over_rows": dict(method="pcd", k=1, batch_size=50),  # every minibatch is the whole (shuffled) data
    "cd_linear": dict(method="cd", k=1, lr_schedule="linear", lr_min=0.001),
    "pcd_inverse": dict(method="pcd", k=1, lr_schedule="inverse", lr_decay=0.2, lr=0.3),
}


@pytest.mark.parametrize("name", RBM_OPTIONS)
def test_rbm_trains_the_same_on_both_paths(name):
    def make():
        return randomise(rbm(), seed=13, scale=0.3)

    data = binary_data(make())
    fused, generic = fused_and_generic(make, data, **RBM_OPTIONS[name])
    assert_same(fused, generic)


def test_rbm_trains_the_same_on_both_paths_in_float32():
    """In float32 too both paths draw float32 uniforms from one generator, so they stay together."""
    def make():
        c = rbm(dtype="float32")
        rng = np.random.default_rng(14)
        for param in c.model.params:
            c.params[param.name] = rng.normal(0, 0.3, param.shape).astype(np.float32)
        return c

    fused, generic = fused_and_generic(make, binary_data(make()), method="pcd", k=2, momentum=0.5)
    assert all(v.dtype == np.float32 for v in fused.values())
    assert_same(fused, generic, rtol=0, atol=1e-4)


def test_a_different_seed_gives_different_fused_parameters():
    """The fused run depends on its draws: the equality above is not two runs that ignore the data."""
    def make():
        return randomise(rbm(), seed=13, scale=0.3)

    data = binary_data(make())
    first = train(make(), data, True, seed=3)
    second = train(make(), data, True, seed=4)
    assert not np.allclose(first["W"], second["W"], rtol=0, atol=1e-6)


# ---- 6. which path the trainer takes ----

def test_trainer_takes_the_fused_path_for_an_rbm():
    c = rbm()
    trainer = Trainer(c, binary_data(c), verbose=0)
    assert trainer.fused is not None and trainer.why_generic is None
    assert isinstance(trainer.fused, FusedStep)


@pytest.mark.parametrize("given, fragment", [
    (dict(sparsity_target=0.1, sparsity_cost=0.1), "sparsity"),
    (dict(fused=False), "fused=False"),
    (dict(clamp=("h",)), "clamped"),
])
def test_trainer_takes_the_generic_path_and_says_why(given, fragment):
    c = rbm()
    trainer = Trainer(c, binary_data(c), verbose=0, **given)
    assert trainer.fused is None
    assert trainer.why_generic is not None and fragment in trainer.why_generic


def test_fit_passes_its_fused_option_to_the_trainer(monkeypatch):
    calls = []
    original = fused_module.FusedStep.update

    def counted(self, batch, lr, rng):
        calls.append(len(batch))
        return original(self, batch, lr, rng)

    monkeypatch.setattr(fused_module.FusedStep, "update", counted)
    c = rbm()
    data = binary_data(c)
    c.fit(data, epochs=2, batch_size=BATCH, verbose=0)
    assert calls == [10, 10, 10, 7] * 2
    calls.clear()
    c.fit(data, epochs=2, batch_size=BATCH, verbose=0, fused=False)
    assert calls == []


# ---- 7. divergence ----

def test_fused_divergence_stops_and_restores_finite_parameters():
    c = rbm()
    data = binary_data(c)
    c.fit(data, epochs=1, batch_size=BATCH, verbose=0)
    before = host(c.params)
    # the statistics are bounded by 1, so it takes an lr near the float64 limit (1e30 only makes
    # parameters of size 1e30 on both paths) for the sum of a minibatch's steps to overflow
    trainer = Trainer(c, data, epochs=2, batch_size=BATCH, lr=1e308, verbose=0)
    assert trainer.fused is not None
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="diverged in epoch 1"):
        trainer.run()
    for name, value in c.params.items():
        assert np.all(np.isfinite(value)), name
        np.testing.assert_array_equal(value, before[name])


# ---- 8. resume ----

@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_fused_resume_gives_the_uninterrupted_parameters(tmp_path, method):
    data = binary_data(rbm())
    given = dict(method=method, batch_size=BATCH, lr=0.1, momentum=0.5, seed=5, verbose=0)
    straight = rbm()
    straight.fit(data, epochs=4, **given)
    path = tmp_path / "run.npz"
    interrupted = rbm()
    interrupted.fit(data, epochs=2, checkpoint=path, **given)
    assert not np.array_equal(interrupted.params["W"], straight.params["W"])
    resumed = rbm()
    resumed.fit(data, epochs=4, resume=path, **given)
    for name in straight.params:
        np.testing.assert_array_equal(resumed.params[name], straight.params[name], err_msg=name)


def test_a_generic_checkpoint_resumes_on_the_fused_path(tmp_path):
    data = binary_data(rbm())
    given = dict(method="pcd", batch_size=BATCH, lr=0.1, momentum=0.5, seed=5, verbose=0)
    straight = rbm()
    straight.fit(data, epochs=4, **given)
    path = tmp_path / "generic.npz"
    rbm().fit(data, epochs=2, checkpoint=path, fused=False, **given)
    resumed = rbm()
    resumed.fit(data, epochs=4, resume=path, fused=True, **given)
    assert_same(host(resumed.params), host(straight.params))


# ---- 9. the CuPy backend's code ----

def test_cupy_standin_trains_on_the_fused_path_as_numpy_does(monkeypatch):
    """PGMDSL_CUPY_STANDIN=numpy: the CuPy module's code with xp = numpy, so the trainer draws
    from its own generator as on the NumPy backend and both give the same parameters."""
    monkeypatch.setenv("PGMDSL_CUPY_STANDIN", "numpy")
    given = dict(method="pcd", k=2, momentum=0.5, weight_decay=0.01)

    def make(backend):
        c = randomise(rbm(backend=backend), seed=15, scale=0.3)
        assert c.backend == backend
        return c

    data = binary_data(make("numpy"))
    on_cupy = train(make("cupy"), data, True, **given)
    on_numpy = train(make("numpy"), data, True, **given)
    generic_cupy = train(make("cupy"), data, False, **given)
    for name, value in on_cupy.items():
        assert np.all(np.isfinite(value)), name
    assert_same(on_cupy, on_numpy)
    assert_same(on_cupy, generic_cupy)


class CpuElementwiseKernel:
    """cupy.ElementwiseKernel on NumPy: evaluates the kernel's NumPy equivalent from FUSED_KERNELS."""

    def __init__(self, in_params, out_params, operation, name):
        self.operation, self.name, self.table = operation, name, None

    def __call__(self, *args):
        return next(entry[3] for entry in self.table.values() if entry[2] == self.operation)(*args)


def fake_cupy_rbm(monkeypatch):
    """An RBM compiled for a module named cupy (NumPy underneath): xp is not numpy, so the trainer takes
    its GPU branch (a generator reseeded every epoch) and the prelude its fused-kernel branch."""
    module = types.ModuleType("cupy")
    module.__getattr__ = lambda attribute: getattr(np, attribute)
    module.ElementwiseKernel = CpuElementwiseKernel
    monkeypatch.delenv("PGMDSL_CUPY_STANDIN", raising=False)
    monkeypatch.setitem(sys.modules, "cupy", module)
    model = pgmdsl.load("rbm", nv=12, nh=5)
    source = generate_source(model, "cupy", "float64")
    generated = load_module(source, "rbm-fused-fake-cupy")
    assert generated.xp is module
    for kernel in generated._FUSED.values():
        kernel.table = generated.FUSED_KERNELS
    return randomise(Compiled(model, generated, source, "cupy", "float64"), seed=16, scale=0.3)


def test_cupy_branch_trains_on_the_fused_path_as_on_the_generic_one(monkeypatch):
    """On real CuPy the sampler differs from NumPy's (it is reseeded from the trainer's generator each epoch),
    so the fused run is compared with the generic run of the same backend, not with the NumPy backend."""
    given = dict(method="pcd", k=2, momentum=0.5, chains=7)
    first = fake_cupy_rbm(monkeypatch)
    assert first.xp is not np
    data = binary_data(first)
    fused = train(first, data, True, **given)
    generic = train(fake_cupy_rbm(monkeypatch), data, False, **given)
    for name, value in fused.items():
        assert np.all(np.isfinite(value)), name
    assert_same(fused, generic)
    on_numpy = train(randomise(rbm(), seed=16, scale=0.3), data, True, **given)
    assert not np.allclose(fused["W"], on_numpy["W"], rtol=0, atol=1e-6)  # the branch really was the other one


def test_buffers_are_no_larger_than_the_data():
    """A batch_size above the number of rows allocates minibatch buffers for the rows (chains stay as asked)."""
    data = binary_data(rbm())
    cd = Trainer(rbm(), data, method="cd", batch_size=100_000, verbose=0).fused
    assert cd.S.shape[0] == 2 * ROWS
    pcd = Trainer(rbm(), data, method="pcd", batch_size=100, verbose=0).fused
    assert pcd.S.shape[0] == ROWS + 100 and pcd.chains == 100  # the generic trainer keeps batch_size chains too
