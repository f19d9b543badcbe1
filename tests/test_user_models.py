"""Models a user might write beyond the standard library: spins, one-hot hidden groups,
matrix-shaped layers, nonlinear parameter lets, constants in lets. Checked against
hand-written energies by enumeration, like the library."""

import numpy as np
import pytest

import pgmdsl
from pgmdsl.evaluate import exact_log_z
from pgmdsl.runtime.numerics import logsumexp

import exact

SOURCES = {
    "spin": """model spin(n: int = 4, m: int = 3)
visible s[n]: spin
hidden h[m]: spin
param J[n, m] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
energy = -s[i]*J[i,j]*h[j] - a[i]*s[i]""",
    "softmax_hidden": """model softmax_hidden(n: int = 4, k: int = 3)
visible v[n]: binary
hidden z[2, k]: onehot
param W[n, 2, k] ~ normal(0, 0.5)
param c[2, k] ~ normal(0, 0.5)
energy = -v[i]*W[i,g,j]*z[g,j] - c[g,j]*z[g,j]""",
    "matrix_layer": """model matrix_layer(a: int = 2, b: int = 2, nh: int = 3)
visible v[a, b]: binary
hidden h[nh]: binary
param W[a, b, nh] ~ normal(0, 0.5)
param bias[nh] = 0.1
energy = -v[x,y]*W[x,y,j]*h[j] - bias[j]*h[j] + 0.5*v[x,y]*v[x,y]""",
    "shifted_weights": """model shifted_weights(n: int = 3, m: int = 2)
visible v[n]: binary
hidden h[m]: binary
param logw[n, m] ~ normal(0, 0.3)
param b[m] = 0
let w[i, j] = exp(logw[i, j]) - 1
energy = -v[i]*w[i,j]*h[j] - b[j]*h[j]""",
}

HAND = {
    "spin": lambda p, s: -np.einsum("bi,ij,bj->b", s["s"], p["J"], s["h"]) - s["s"] @ p["a"],
    "softmax_hidden": lambda p, s: -np.einsum("bi,igj,bgj->b", s["v"], p["W"], s["z"])
    - np.einsum("gj,bgj->b", p["c"], s["z"]),
    "matrix_layer": lambda p, s: -np.einsum("bxy,xyj,bj->b", s["v"], p["W"], s["h"]) - s["h"] @ p["bias"]
    + 0.5 * (s["v"] ** 2).sum((1, 2)),
    "shifted_weights": lambda p, s: -np.einsum("bi,ij,bj->b", s["v"], np.exp(p["logw"]) - 1, s["h"]) - s["h"] @ p["b"],
}


@pytest.mark.parametrize("name", SOURCES)
def test_user_model_matches_its_hand_written_energy(name):
    c = pgmdsl.parse(SOURCES[name], filename=f"{name}.dgm").compile(dtype="float64", cache=False)
    params = {k: np.asarray(v) for k, v in c.params.items()}
    layers = [n for n, info in c.layers.items() if info["role"] in ("visible", "hidden")]
    every = exact.product_state({n: exact.layer_states(c.layers[n]) for n in layers})
    energies = HAND[name](params, every)
    np.testing.assert_allclose(c.energy(every), energies, rtol=0, atol=1e-10)
    assert abs(exact_log_z(c) - logsumexp(-energies)) < 1e-9
    # the exact log-likelihood gradient of a few visible rows, by complex-step derivatives of the hand energy
    visible = [n for n in layers if c.layers[n]["role"] == "visible"]
    data = {k: v[:3] for k, v in exact.product_state({n: exact.layer_states(c.layers[n]) for n in visible}).items()}
    log_joint = -energies
    derivatives = exact.energy_derivatives(HAND[name], params, every)
    model_side = exact.weighted(derivatives, exact.log_normalise(log_joint))
    expected = {k: model_side[k].copy() for k in model_side}
    for row in range(3):
        match = np.all([np.all(every[v] == data[v][row], axis=tuple(range(1, every[v].ndim))) for v in visible], axis=0)
        posterior = np.where(match, np.exp(log_joint - logsumexp(log_joint[match])), 0.0)
        for k, d in exact.weighted(derivatives, posterior).items():
            expected[k] -= d / 3
    kept = exact.product_state({n: exact.layer_states(c.layers[n]) for n in c.kept})
    weights = exact.log_normalise(-np.asarray(c.free_energy(kept)))
    got = c.gradient(data, kept, None, weights)
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], rtol=0, atol=1e-9, err_msg=k)


def test_a_gaussian_hidden_layer_is_integrated_out_exactly():
    import itertools

    from pgmdsl.evaluate import ais

    source = """model gaussian_hidden(nv: int = 4, nh: int = 2)
visible v[nv]: binary
hidden h[nh]: gaussian
param W[nv, nh] ~ normal(0, 0.3)
param a[nv] ~ normal(0, 0.3)
energy = h[j]^2/2 - v[i]*W[i,j]*h[j] - a[i]*v[i]"""
    c = pgmdsl.parse(source, filename="gaussian_hidden.dgm").compile(dtype="float64", cache=False)
    V = np.array(list(itertools.product([0, 1], repeat=4)), float)
    fields = V @ np.asarray(c.params["W"])
    # integral over h of exp(-|h|^2/2 + f.h) = 2 pi exp(|f|^2/2) for two units
    closed_form = logsumexp(V @ np.asarray(c.params["a"]) + (fields**2).sum(1) / 2) + np.log(2 * np.pi)
    assert abs(exact_log_z(c) - closed_form) < 1e-12
    # AIS anneals the summed Gaussian layer from a standard base precision, which keeps beta = 0 proper
    estimate = ais(c, V, runs=200, schedule=np.linspace(0, 1, 1001), progress=False)
    assert abs(estimate.log_z - closed_form) < 0.05


def test_a_constant_let_scales_a_term_like_a_parameter_would():
    """let s = 0.5 (a number, no parameter in it) is an array of the module's dtype, indexed like any let."""
    def compiled(text):
        c = pgmdsl.parse(text, "m.dgm").compile(dtype="float64")
        c.params["W"] = np.arange(6.0).reshape(3, 2) / 10
        return c

    header = ("model m(nv: int = 3, nh: int = 2)\nvisible v[nv]: binary\nhidden h[nh]: binary\n"
              "param W[nv, nh] ~ normal(0, 0.1)\n")
    let = compiled(header + "let s = 0.5\nenergy = -s*v[i]*W[i,j]*h[j]\n")
    plain = compiled(header + "energy = -0.5*v[i]*W[i,j]*h[j]\n")
    state = {"v": np.array([[1.0, 0.0, 1.0]]), "h": np.array([[1.0, 1.0]])}
    np.testing.assert_allclose(let.mean("h", state), plain.mean("h", state), rtol=1e-15)
    np.testing.assert_allclose(let.energy(state), plain.energy(state), rtol=1e-15)
    assert set(let.sample(2, steps=2)) == {"v", "h"}
