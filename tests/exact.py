"""Brute force from the energy alone: enumeration, exact conditionals, free energies, gradients.

Independent of the compiler: energies are written by hand here (complex-safe,
so complex-step differentiation gives dE/dtheta to machine precision), and
every distribution comes from enumerating states.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

# The smallest sizes at which every standard-library model (but the dbn stack) shows all its structure.
SMALLEST_SIZES = {
    "rbm": dict(nv=4, nh=3),
    "gbrbm": dict(nv=3, nh=2),
    "mcrbm": dict(nv=3, nm=2, nc=2),
    "conv_rbm": dict(C=1, NV=4, K=2, NW=3, pool=2),
    "bm": dict(n=3, nh=2),
    "dbm": dict(nv=3, n1=2, n2=2),
    "dbm3": dict(nv=2, n1=2, n2=2, n3=2),
    "class_rbm": dict(nx=3, ny=3, nh=2),
    "crbm": dict(nv=3, nh=2, order=2),
    "relu_rbm": dict(nv=3, nh=2),
    "structured_crbm": dict(nx=2, ny=3, nh=2),
}

# ---- hand-written energies (one per standard-library model) ----

def rbm(p, s):
    v, h = s["v"], s["h"]
    return -(v @ p["a"]) - (h @ p["b"]) - np.einsum("bi,ij,bj->b", v, p["W"], h)


def gbrbm(p, s):
    v, h = s["v"], s["h"]
    sigma = np.exp(p["log_sigma"])
    containment = (((v - p["a"]) ** 2) / (2 * sigma**2)).sum(1)
    return containment - h @ p["b"] - np.einsum("bi,ij,bj->b", v / sigma, p["W"], h)


def mcrbm(p, s):
    x, hm, hc = s["x"], s["hm"], s["hc"]
    u = x @ p["R"]
    return (x**2).sum(1) / 2 - np.einsum("bi,ij,bj->b", x, p["W"], hm) - hm @ p["bm"] \
        + (hc * u**2).sum(1) / 2 - hc @ p["bc"]


def conv_rbm(p, s):
    v, h, W = s["v"], s["h"], p["W"]
    K, C, NW, _ = W.shape
    NH = h.shape[-1]
    total = 0
    for r in range(NW):
        for q in range(NW):
            window = v[:, :, r:r + NH, q:q + NH]  # v[c, y + r, x + q]
            total = total + np.einsum("bcyx,kc,bkyx->b", window, W[:, :, r, q], h)
    return -total - np.einsum("k,bkyx->b", p["b"], h) - np.einsum("c,bcyx->b", p["a"], v)


def bm(p, s):
    v, h = s["v"], s["h"]
    return (-(v @ p["a"]) - (h @ p["b"]) - np.einsum("bi,ij,bj->b", v, p["W"], h)
            - np.einsum("bi,ik,bk->b", v, p["L"], v) / 2 - np.einsum("bj,jl,bl->b", h, p["M"], h) / 2)


def dbm(p, s):
    v, h1, h2 = s["v"], s["h1"], s["h2"]
    return (-(v @ p["a"]) - h1 @ p["b1"] - h2 @ p["b2"]
            - np.einsum("bi,ij,bj->b", v, p["W1"], h1) - np.einsum("bj,jk,bk->b", h1, p["W2"], h2))


def dbm3(p, s):
    v, h1, h2, h3 = s["v"], s["h1"], s["h2"], s["h3"]
    return (-(v @ p["a"]) - h1 @ p["b1"] - h2 @ p["b2"] - h3 @ p["b3"]
            - np.einsum("bi,ij,bj->b", v, p["W1"], h1) - np.einsum("bj,jk,bk->b", h1, p["W2"], h2)
            - np.einsum("bk,kl,bl->b", h2, p["W3"], h3))


def class_rbm(p, s):
    x, y, h = s["x"], s["y"], s["h"]
    return (-(x @ p["a"]) - y @ p["c"] - h @ p["b"]
            - np.einsum("bi,ij,bj->b", x, p["W"], h) - np.einsum("bl,lj,bj->b", y, p["U"], h))


def crbm(p, s):
    v, h, past = s["v"], s["h"], s["past"]
    sigma = np.exp(p["log_sigma"])
    return ((((v - p["a"]) / sigma) ** 2).sum(1) / 2 - np.einsum("bi,tpi,btp->b", v / sigma, p["A"], past)
            - np.einsum("bj,tpj,btp->b", h, p["B"], past) - np.einsum("bi,ij,bj->b", v / sigma, p["W"], h)
            - h @ p["b"])


def relu_rbm(p, s):
    v, h = s["v"], s["h"]
    return (np.exp(p["log_gamma"]) * h**2).sum(1) / 2 - v @ p["a"] - h @ p["b"] - np.einsum("bi,ij,bj->b", v, p["W"], h)


def structured_crbm(p, s):
    x, y, h = s["x"], s["y"], s["h"]
    return (-np.einsum("bi,ij,bj->b", y, p["W"], h) - y @ p["b"] - np.einsum("bk,ki,bi->b", x, p["V"], y)
            - h @ p["c"] - np.einsum("bk,kj,bj->b", x, p["U"], h))


def pooled_pair(p, s):
    """tests/models/pooled_pair.dgm: p is the OR of each 2x2 block of h, read off h here."""
    v, h, g = s["v"], s["h"], s["g"]
    rows, k, n, _ = h.shape
    pooled = h.reshape(rows, k, n // 2, 2, n // 2, 2).max(axis=(3, 5))
    return (-np.einsum("bi,ikyx,bkyx->b", v, p["W"], h) - v @ p["a"] - np.einsum("k,bkyx->b", p["b"], h)
            - np.einsum("k,bkyx->b", p["c"], pooled) - np.einsum("bkyx,kyxm,bm->b", pooled, p["U"], g) - g @ p["d"])


ENERGIES = {f.__name__: f for f in (rbm, gbrbm, mcrbm, conv_rbm, bm, dbm, dbm3, class_rbm, crbm, relu_rbm,
                                    structured_crbm, pooled_pair)}
# models of the tests themselves (not the standard library), by name
TEST_MODELS = {"pooled_pair": str(Path(__file__).parent / "models" / "pooled_pair.dgm")}


# ---- enumeration ----

def layer_states(info: dict, pool=None) -> np.ndarray:
    """Every configuration of a discrete layer, shape (count,) + layer shape."""
    shape, unit = info["shape"], info["unit"]
    if pool:
        return _pooled_states(shape, pool)
    if unit == "onehot":
        groups = int(np.prod(shape[:-1]))
        eye = np.eye(shape[-1])
        rows = [np.concatenate(choice) for choice in itertools.product(eye, repeat=groups)]
        return np.array(rows).reshape((-1,) + shape)
    values = (0.0, 1.0) if unit == "binary" else (-1.0, 1.0)
    rows = list(itertools.product(values, repeat=int(np.prod(shape))))
    return np.array(rows).reshape((-1,) + shape)


def _pooled_states(shape, pool):
    """At most one unit on in each pool x pool block of the trailing axes."""
    *lead, height, width = shape
    blocks = [(l, y, x) for l in itertools.product(*map(range, lead))
              for y in range(0, height, pool[0]) for x in range(0, width, pool[1])]
    per_block = [None] + [(dy, dx) for dy in range(pool[0]) for dx in range(pool[1])]
    states = []
    for choice in itertools.product(per_block, repeat=len(blocks)):
        h = np.zeros(shape)
        for (lead_index, y, x), on in zip(blocks, choice):
            if on is not None:
                h[lead_index + (y + on[0], x + on[1])] = 1
        states.append(h)
    return np.array(states)


def product_state(parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The cartesian product of several layers' state lists, as one batch."""
    names = list(parts)
    counts = [len(parts[n]) for n in names]
    index = np.array(list(itertools.product(*map(range, counts)))).reshape(-1, len(names))
    return {n: parts[n][index[:, k]] for k, n in enumerate(names)}


def repeat_rows(state: dict, times: int) -> dict:
    return {k: np.repeat(v, times, axis=0) for k, v in state.items()}


def tile_rows(state: dict, times: int) -> dict:
    return {k: np.tile(v, (times,) + (1,) * (v.ndim - 1)) for k, v in state.items()}


def energy_derivatives(energy, params: dict, state: dict) -> dict:
    """dE/dtheta for every entry of every parameter, per row, by complex-step differentiation."""
    step = 1e-30
    result = {}
    for name, value in params.items():
        grads = np.zeros((len(next(iter(state.values()))),) + value.shape)
        for index in np.ndindex(value.shape):
            shifted = dict(params)
            perturbed = value.astype(complex)
            perturbed[index] += 1j * step
            shifted[name] = perturbed
            complex_state = {k: v.astype(complex) for k, v in state.items()}
            grads[(slice(None),) + index] = energy(shifted, complex_state).imag / step
        result[name] = grads
    return result


def weighted(derivatives: dict, weights: np.ndarray) -> dict:
    return {k: np.tensordot(weights, d, axes=(0, 0)) for k, d in derivatives.items()}


def log_normalise(log_weights: np.ndarray) -> np.ndarray:
    return np.exp(log_weights - logsumexp(log_weights))
