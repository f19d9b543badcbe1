"""CD-1 and PCD-1 steps of an RBM: pgmdsl's trainer against hand-written NumPy.

RBM 784 x 500, batch 100, synthetic binary data with about 13% ones
(MNIST-like). Both programs do the same work per step: hidden probabilities,
a hidden sample, a visible sample, hidden probabilities again, and the
parameter update from data minus model statistics. PCD as BernoulliRBM runs
it: the chains keep hidden samples, the visible units are drawn from them,
and the next hidden samples from the model rows' hidden probabilities.

pgmdsl's steps: "fused", the packed update (`runtime.fused.FusedStep`) that
`Compiled.fit` runs for models like this one, and "generic",
`Trainer.update` over the generated module (what fit runs for models that do
not pack, or with fused=False). Timed interleaved in one run; reports
medians, the ratio, and the fraction of the GEMM floor measured in the same
run (10 B V H flops a step).

    python bench/cd1.py [--dtype float32|float64] [--batch 100] [--hidden 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, machine  # noqa: E402

import pgmdsl  # noqa: E402


def hand_written(W, a, b, v0, lr, rng, dtype, persistent=False, xp=np):
    """The reference: tight CD-1 (or PCD-1 with `persistent`) as one writes it by hand in NumPy (or CuPy: xp)."""
    batch = v0.shape[0]
    chains = [None]  # PCD, as BernoulliRBM: the chains keep hidden samples

    def sigmoid(x):
        out = xp.multiply(x, 0.5)
        xp.tanh(out, out=out)
        out *= 0.5
        out += 0.5
        return out

    def step():
        h0 = sigmoid(v0 @ W + b)
        if persistent and chains[0] is None:
            chains[0] = (rng.random(h0.shape, dtype=dtype) < h0).astype(dtype)
        hs = chains[0] if persistent else (rng.random(h0.shape, dtype=dtype) < h0).astype(dtype)
        pv = sigmoid(hs @ W.T + a)
        vk = (rng.random(pv.shape, dtype=dtype) < pv).astype(dtype)
        hk = sigmoid(vk @ W + b)
        if persistent:
            chains[0] = (rng.random(hk.shape, dtype=dtype) < hk).astype(dtype)
        W[...] += (lr / batch) * (v0.T @ h0 - vk.T @ hk)
        a[...] += lr * (v0.mean(0) - vk.mean(0))
        b[...] += lr * (h0.mean(0) - hk.mean(0))

    return step


def generated(compiled, v0, lr, method, sampler=None, host_rows=None):
    """The same step through pgmdsl's trainer (Compiled.fit's update) and the generated module.

    On the GPU give the host copy of the rows (host_rows) and a CuPy generator (sampler).
    """
    from pgmdsl.runtime.train import Trainer

    rows = v0 if host_rows is None else host_rows
    trainer = Trainer(compiled, rows, method=method, batch_size=len(rows), lr=lr, seed=1, verbose=0)
    if sampler is not None:
        trainer.sampler = sampler
    batch = {"v": v0}
    return lambda: trainer.update(batch, lr)


def fused(compiled, v0, lr, method):
    """The same step as Compiled.fit runs it for a packable model: runtime.fused.FusedStep on the packed matrix."""
    from pgmdsl.runtime.train import Trainer

    trainer = Trainer(compiled, v0, method=method, batch_size=len(v0), lr=lr, seed=1, verbose=0)
    trainer.fused.load(compiled.params, trainer.velocity, trainer.chains)
    return lambda: trainer.fused.update(v0, lr, trainer.sampler)


def gemm_floor(visible, hidden, batch, dtype) -> float:
    """Seconds for the step's matrix products at the measured GEMM rate."""
    rng = np.random.default_rng(0)
    x = rng.random((1000, 1000), dtype=dtype)
    y = rng.random((1000, 1000), dtype=dtype)
    for _ in range(3):
        x @ y
    start = time.perf_counter()
    for _ in range(10):
        x @ y
    rate = 2e9 * 10 / (time.perf_counter() - start)
    return 10 * batch * visible * hidden / rate, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--visible", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    v0 = (rng.random((args.batch, args.visible)) < 0.13).astype(dtype)
    compiled = pgmdsl.load("rbm", nv=args.visible, nh=args.hidden).compile(dtype=args.dtype)
    W = np.array(compiled.params["W"])
    a, b = np.zeros(args.visible, dtype), np.zeros(args.hidden, dtype)
    def fresh():
        return pgmdsl.load("rbm", nv=args.visible, nh=args.hidden).compile(dtype=args.dtype)

    steps = {
        "hand CD-1": hand_written(W, a, b, v0, 0.01, np.random.default_rng(1), dtype),
        "fused CD-1": fused(compiled, v0, 0.01, "cd"),
        "generic CD-1": generated(fresh(), v0, 0.01, "cd"),
        "hand PCD-1": hand_written(W.copy(), a.copy(), b.copy(), v0, 0.01, np.random.default_rng(1), dtype, True),
        "fused PCD-1": fused(fresh(), v0, 0.01, "pcd"),
        "generic PCD-1": generated(fresh(), v0, 0.01, "pcd"),
    }
    times = interleaved(steps, repeats=args.repeats)
    floor, rate = gemm_floor(args.visible, args.hidden, args.batch, dtype)
    print(machine())
    print(f"RBM {args.visible}x{args.hidden}, batch {args.batch}, {args.dtype}; "
          f"median of {args.repeats} x 50 steps after warm-up; GEMM rate {rate / 1e9:.0f} GFLOP/s "
          f"-> floor {floor * 1e3:.2f} ms/step")
    for name, seconds in times.items():
        print(f"  {name:14s} {seconds * 1e3:7.3f} ms/step  {1 / seconds:7.1f} steps/s  {floor / seconds:5.0%} of the GEMM floor")
    for method in ("CD-1", "PCD-1"):
        for path in ("fused", "generic"):
            ratio = times[f"{path} {method}"] / times[f"hand {method}"]
            print(f"  {method}: pgmdsl {path} / hand-written time = {ratio:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
