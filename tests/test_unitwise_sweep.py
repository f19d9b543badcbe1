"""Unit-wise Gibbs sweeps: the generated incremental sweep against the full recomputation it replaces.

The generated sample_L of a layer with lateral terms computes the layer's
field once and, after each unit's draw, adds (new - old) times that unit's row
of coupling_L (-d2E/dL dL). The sweep it replaces, written out here from the
module's own field_L, recomputes the whole field before every unit's draw.
Given the same random numbers in the same order both must draw the same
samples (the fields agree to rounding), at any inverse temperature and extra
field (annealing).
"""

from __future__ import annotations

import numpy as np
import pytest

import pgmdsl
from pgmdsl import units as unit_types
from pgmdsl.runtime.initialize import constrain

from standin import compile_for

SPIN = """model ising(n: int = 6, nh: int = 3)
visible v[n]: spin
hidden h[nh]: binary
param J[n, n] ~ normal(0, 0.5) : symmetric, zero_diagonal
param W[n, nh] ~ normal(0, 0.5)
param a[n] ~ normal(0, 0.5)
energy = -a[i]*v[i] - v[i]*W[i,j]*h[j] - v[i]*J[i,k]*v[k] / 2
"""
ONEHOT = """model potts(n: int = 5, q: int = 3, nh: int = 2)
visible x[n, q]: onehot
hidden h[nh]: binary
param L[n, n] ~ normal(0, 0.5) : symmetric, zero_diagonal
param S[q, q] ~ normal(0, 0.5)
param W[n, q, nh] ~ normal(0, 0.5)
energy = -x[i,c]*W[i,c,j]*h[j] - x[i,c]*L[i,k]*S[c,d]*x[k,d] / 2
"""
# the lateral coupling is gated by the hidden layer: one coupling matrix per batch row
GATED = """model gated(n: int = 5, nh: int = 3)
visible v[n]: binary
hidden h[nh]: binary
param L[n, n] ~ normal(0, 0.5) : symmetric, zero_diagonal
param T[nh] ~ normal(0, 0.5)
param W[n, nh] ~ normal(0, 0.5)
energy = -v[i]*W[i,j]*h[j] - v[i]*L[i,k]*v[k]*h[j]*T[j] / 2
"""
# a layer of two axes, and one whose units couple along rows only (a shared index: the full recomputation)
GRID = """model grid(n: int = 4, m: int = 3, nh: int = 2)
visible v[n, m]: binary
hidden h[nh]: binary
param L[n, n] ~ normal(0, 0.5) : symmetric, zero_diagonal
param S[m, m] ~ normal(0, 0.5)
param W[n, m, nh] ~ normal(0, 0.5)
energy = -v[i,c]*W[i,c,j]*h[j] - v[i,c]*L[i,k]*S[c,d]*v[k,d] / 2
"""
ROWS = """model rows(n: int = 4, m: int = 3, nh: int = 2)
visible v[n, m]: binary
hidden h[nh]: binary
param L[n, n] ~ normal(0, 0.5) : symmetric, zero_diagonal
param W[n, m, nh] ~ normal(0, 0.5)
energy = -v[i,c]*W[i,c,j]*h[j] - v[i,c]*L[i,k]*v[k,c] / 2
"""
# lets: one linear in v that meets only h (no coupling), one that carries v's lateral term (the full recomputation)
LET = """model let_in(n: int = 5, nh: int = 3)
visible v[n]: binary
hidden h[nh]: binary
param L[n, n] ~ normal(0, 0.5) : symmetric, zero_diagonal
param W[n, nh] ~ normal(0, 0.5)
let u[j] = v[i]*W[i,j]
energy = -u[j]*h[j] - v[i]*L[i,k]*v[k] / 2
"""
LATERAL_LET = """model let_lateral(n: int = 5, nh: int = 3)
visible v[n]: binary
hidden h[nh]: binary
param L[n, n] ~ normal(0, 0.5) : symmetric, zero_diagonal
param W[n, nh] ~ normal(0, 0.5)
let u[k] = L[k,i]*v[i]
energy = -v[i]*W[i,j]*h[j] - v[k]*u[k] / 2
"""
# a product of three units of v: the coupling depends on v itself, so the sweep recomputes the field
CUBIC = """model cubic(n: int = 4, nh: int = 3)
visible v[n]: binary
hidden h[nh]: binary
param T[n, n, n] ~ normal(0, 0.5) : zero_diagonal
param L[n, n] ~ normal(0, 0.5) : symmetric, zero_diagonal
param W[n, nh] ~ normal(0, 0.5)
energy = -v[i]*W[i,j]*h[j] - v[i]*L[i,k]*v[k] / 2 - v[i]*v[k]*v[m]*T[i,k,m]
"""
TEXTS = {"spin": SPIN, "onehot": ONEHOT, "gated": GATED, "cubic": CUBIC, "grid": GRID, "rows": ROWS, "let": LET,
         "lateral_let": LATERAL_LET}


def compiled(name: str, backend: str = "numpy", dtype: str = "float64"):
    if name == "bm":
        model = pgmdsl.load("bm", n=7, nh=4)
    else:
        model = pgmdsl.parse(TEXTS[name], f"{name}.dgm")
    c = compile_for(model, backend, dtype)
    rng = np.random.default_rng(sum(map(ord, name)))
    for param in model.params:
        c.params[param.name] = constrain(param, rng.normal(0, 0.8, param.shape)).astype(dtype)
    return c


def random_layer(info, rows, rng):
    shape = (rows,) + tuple(info["shape"])
    if info["unit"] == "spin":
        return 2.0 * (rng.random(shape) < 0.5) - 1
    if info["unit"] == "onehot":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    return (rng.random(shape) < 0.5).astype(float)


def full_recompute_sweep(c, name, state, rng, beta=1.0, offset=None):
    """The sweep before the incremental one: the whole field again for every unit's draw."""
    module, info = c.module, c.layers[name]
    unit = unit_types.get(info["unit"])
    draw = unit.sample.format(f="f")
    units = np.array(state[name], dtype=c.dtype, copy=True)
    full = {**state, name: units}
    shape = tuple(info["shape"])
    for group in np.ndindex(shape[:len(shape) - unit.event_axes]):
        index = (slice(None),) + group
        f = module.anneal(getattr(module, f"field_{name}")(c.params, full), beta, offset)[index]
        units[index] = eval(draw, vars(module), {"f": f, "rng": rng})
    return units


def unitwise(c):
    return [n for n, info in c.layers.items() if info["update"] == "unitwise"]


@pytest.mark.parametrize("backend", ["numpy", "cupy"])
@pytest.mark.parametrize("name", ["bm", "spin", "onehot", "gated", "grid", "let", "cubic", "rows", "lateral_let"])
@pytest.mark.parametrize("beta, shifted", [(1.0, False), (0.37, True)])
def test_incremental_sweep_draws_what_the_full_recomputation_draws(name, backend, beta, shifted):
    c = compiled(name, backend)
    rng = np.random.default_rng(7)
    rows = 64
    state = {n: random_layer(info, rows, rng) for n, info in c.layers.items()}
    for layer in unitwise(c):
        offset = rng.normal(0, 1.0, (rows,) + tuple(c.layers[layer]["shape"])) if shifted else None
        sweep = getattr(c.module, f"sample_{layer}")
        current = dict(state)
        for _ in range(3):  # successive sweeps, each from the last one's state
            expected = full_recompute_sweep(c, layer, current, np.random.default_rng(11), beta, offset)
            got = np.asarray(sweep(c.params, current, np.random.default_rng(11), beta, offset))
            np.testing.assert_array_equal(got, expected)
            current[layer] = got
        assert not np.array_equal(current[layer], state[layer])  # the sweeps moved


@pytest.mark.parametrize("name", ["bm", "spin", "onehot", "gated", "grid", "let"])
def test_coupling_is_minus_the_second_derivative_of_the_energy(name):
    """coupling_L[a, b] = E(.., a=1, b=0) + E(.., a=0, b=1) - E(a=1, b=1) - E(a=0, b=0), by enumeration."""
    c = compiled(name)
    rng = np.random.default_rng(3)
    rows = 3
    state = {n: random_layer(info, rows, rng) for n, info in c.layers.items()}
    for layer in unitwise(c):
        shape = tuple(c.layers[layer]["shape"])
        coupling = np.broadcast_to(getattr(c.module, f"coupling_{layer}")(c.params, state), (rows,) + shape * 2)
        assert "the whole field again" not in c.source
        for a in np.ndindex(shape):
            for b in np.ndindex(shape):
                corners = []
                for xa, xb in [(0, 0), (1, 0), (0, 1), (1, 1)]:
                    x = np.array(state[layer], dtype=float, copy=True)
                    x[(slice(None),) + a], x[(slice(None),) + b] = xa, xb
                    corners.append(c.energy({**state, layer: x}))
                expected = corners[1] + corners[2] - corners[0] - corners[3] if a != b else np.zeros(rows)
                np.testing.assert_allclose(coupling[(slice(None),) + a + b], expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name, why", [("cubic", "depends on the layer itself"),
                                       ("rows", "is read at shared or affine indices"),
                                       ("lateral_let", None)])
def test_a_coupling_the_sweep_cannot_use_falls_back_to_the_full_recomputation(name, why):
    c = compiled(name)
    assert "coupling_v" not in c.source
    if why is None:
        assert "# the whole field again for every unit: a let carries units of layer v into a product" in c.source
    else:
        assert f"# the whole field again for every unit: the coupling of layer v's units {why}" in c.source


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float32_sweeps_agree_with_the_full_recomputation_to_rounding(dtype):
    """In float32 the incremental fields drift from the recomputed ones by rounding only: nearly every draw agrees."""
    c = compiled("bm", dtype=dtype)
    rng = np.random.default_rng(5)
    state = {n: random_layer(info, 200, rng) for n, info in c.layers.items()}
    state = {k: v.astype(dtype) for k, v in state.items()}
    for layer in unitwise(c):
        expected = full_recompute_sweep(c, layer, state, np.random.default_rng(2))
        got = np.asarray(getattr(c.module, f"sample_{layer}")(c.params, state, np.random.default_rng(2)))
        assert got.dtype == np.dtype(dtype)
        assert np.mean(got != expected) <= (1e-3 if dtype == "float32" else 0)
