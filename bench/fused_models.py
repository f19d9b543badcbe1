"""The packed update against the generic one, per epoch, for every kind of model that packs.

On scikit-learn's digits (1797 rows; pixels binarised at 8/16): the
standard rbm (64 x 100), the classification RBM (64 pixels and a one-hot
label of 10 classes, 100 hidden units), and a spin RBM written in the
language (pixels as -1/+1, 100 spin hidden units). Each trains by PCD-1 and
CD-1 for 5 epochs at batch 10 and batch 100, lr 0.05, once with the packed
update (`fit`'s default for these models) and once with `fused=False` (the
generic update over the generated module), interleaved, median of
--repeats fits; also the largest parameter difference between the two
after the same fit (they make the same draws, so it is rounding).

    python bench/fused_models.py [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

import pgmdsl  # noqa: E402

SPINS = """model spins(nv: int = 64, nh: int = 100)
visible v[nv]: spin
hidden  h[nh]: spin
param W[nv, nh] ~ normal(0, 0.01)
param a[nv] = 0
param b[nh] = 0
energy = -a[i]*v[i] - b[j]*h[j] - v[i]*W[i,j]*h[j]
"""
EPOCHS = 5


def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16 > 0.5).astype(np.float64), np.eye(10)[y]


def models(pixels, labels) -> dict:
    """name -> (a function compiling a fresh model, its training data)."""
    return {
        "rbm": (lambda: pgmdsl.load("rbm", nv=64, nh=100).compile(dtype="float64"), pixels),
        "class_rbm": (lambda: pgmdsl.load("class_rbm", nx=64, ny=10, nh=100).compile(dtype="float64"),
                      {"x": pixels, "y": labels}),
        "spins (user model)": (lambda: pgmdsl.parse(SPINS, filename="spins.dgm").compile(dtype="float64"),
                               2 * pixels - 1),
    }


def fit(make, data, fused: bool, method: str, batch: int):
    compiled = make()
    start = time.perf_counter()
    compiled.fit(data, method=method, epochs=EPOCHS, batch_size=batch, lr=0.05, seed=0, verbose=0, fused=fused)
    return (time.perf_counter() - start) / EPOCHS, compiled.params


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(machine())
    print(f"digits 1797 rows, {EPOCHS} epochs per fit, float64, lr 0.05; median of {args.repeats} fits, interleaved")
    print(f"  {'model':<20} {'method':<6} {'batch':>5} {'packed ms/epoch':>16} {'generic ms/epoch':>17} "
          f"{'speed-up':>9} {'max |diff|':>11}")
    pixels, labels = digits()
    results = []
    for name, (make, data) in models(pixels, labels).items():
        for method in ("pcd", "cd"):
            for batch in (10, 100):
                fit(make, data, True, method, batch)  # warm-up: compile cache, BLAS
                times = {True: [], False: []}
                for _ in range(args.repeats):
                    for fused in (True, False):
                        seconds, params = fit(make, data, fused, method, batch)
                        times[fused].append(seconds)
                        if fused:
                            packed = params
                        else:
                            difference = max(float(np.max(np.abs(packed[k] - params[k]))) for k in params)
                packed_s, generic_s = statistics.median(times[True]), statistics.median(times[False])
                row = {"model": name, "method": method, "batch": batch, "packed_s": packed_s,
                       "generic_s": generic_s, "max_difference": difference}
                results.append(row)
                print(f"  {name:<20} {method:<6} {batch:5d} {1000 * packed_s:16.1f} {1000 * generic_s:17.1f} "
                      f"{generic_s / packed_s:8.2f}x {difference:11.1e}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
