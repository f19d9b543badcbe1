"""Small RBMs with random parameters and random binary rows, for the estimators' tests."""

import numpy as np

import pgmdsl


def random_rbm(nv=6, nh=4, seed=0, scale=0.8):
    """An RBM nv x nh in float64, every parameter drawn N(0, scale) from default_rng(seed)."""
    c = pgmdsl.load("rbm", nv=nv, nh=nh).compile(dtype="float64")
    rng = np.random.default_rng(seed)
    for param in c.model.params:
        c.params[param.name] = rng.normal(0, scale, param.shape)
    return c


def binary_rows(count, nv=6, seed=1):
    """count binary rows of nv units, each unit on with its own probability in [0.2, 0.8]."""
    rng = np.random.default_rng(seed)
    return (rng.random((count, nv)) < rng.uniform(0.2, 0.8, nv)).astype(float)
