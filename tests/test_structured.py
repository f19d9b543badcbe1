"""The structured-output CRBM (Mnih, Larochelle and Hinton 2011) learns to denoise: p(y | x) beats the data's
marginals on held-out rows, exactly evaluated, and its samples given a noisy input are closer to the clean one."""

import numpy as np

import pgmdsl
from pgmdsl.evaluate import conditional_log_likelihood


def test_a_structured_crbm_denoises_small_digits():
    images = pgmdsl.datasets.digits().reshape(-1, 8, 8)
    clean = (images.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)) > 0.4).reshape(-1, 16).astype(float)
    rng = np.random.default_rng(0)
    noisy = np.abs(clean - (rng.random(clean.shape) < 0.1))
    c = pgmdsl.load("structured_crbm", nx=16, ny=16, nh=8).compile(dtype="float64")
    c.fit({"x": noisy[:1500], "y": clean[:1500]}, epochs=15, batch_size=20, lr=0.05, momentum=0.5, seed=0,
          verbose=0)
    held = {"x": noisy[1500:1600], "y": clean[1500:1600]}
    model = conditional_log_likelihood(c, held)
    p = np.clip(clean[:1500].mean(0), 1e-3, 1 - 1e-3)
    marginals = (held["y"] * np.log(p) + (1 - held["y"]) * np.log(1 - p)).sum(1)
    assert model.mean() > marginals.mean() + 1.5
    samples = [c.sample(100, steps=20, clamp={"x": held["x"]}, seed=s)["y"] for s in range(5)]
    denoised = (np.mean(samples, axis=0) > 0.5).astype(float)
    assert np.mean(denoised != held["y"]) < np.mean(held["x"] != held["y"])
