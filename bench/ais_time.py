"""Time of AIS on an RBM 784 x 500: 100 runs, the default 14,500 distributions.

Random weights of realistic scale (W ~ N(0, 0.05), hidden biases ~ N(-1, 0.5),
visible biases from MNIST-like marginals), float64 and float32, one process,
runs vectorised as one batch. Prints wall time and time per distribution.

    python bench/ais_time.py [--dtypes float64 float32] [--distributions 14500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

import pgmdsl  # noqa: E402
from pgmdsl.evaluate import ais, default_schedule  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    parser.add_argument("--distributions", type=int, default=14500)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = (rng.random((1000, 784)) < rng.beta(0.3, 2.0, 784)).astype(float)  # MNIST-like: about 13% on
    print(machine())
    full = default_schedule()
    schedule = full if args.distributions == 14500 else np.linspace(0, 1, args.distributions + 1)
    weights = rng.normal(0, 0.05, (784, 500))
    hidden_biases = rng.normal(-1, 0.5, 500)
    p = np.clip(data.mean(0), 0.01, 0.99)
    for dtype in args.dtypes:  # the same model in each precision
        c = pgmdsl.load("rbm", nv=784, nh=500).compile(dtype=dtype)
        c.params["W"][...] = weights
        c.params["b"][...] = hidden_biases
        c.params["a"][...] = np.log(p / (1 - p))
        started = time.perf_counter()
        estimate = ais(c, data, runs=args.runs, schedule=schedule, progress=False)
        seconds = time.perf_counter() - started
        print(f"RBM 784x500 {dtype}: {args.runs} runs x {len(schedule) - 1} distributions: {seconds:.1f} s "
              f"({seconds / (len(schedule) - 1) * 1e3:.2f} ms per distribution); {estimate}")


if __name__ == "__main__":
    main()
