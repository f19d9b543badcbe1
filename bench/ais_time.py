"""Time of AIS on an RBM 784 x 500: 100 runs, the default 14,500 distributions.

Random weights of realistic scale (W ~ N(0, 0.05), hidden biases ~ N(-1, 0.5),
visible biases from MNIST-like marginals), float64 and float32, one process,
two ways alternately: the runs as one batch on every BLAS thread
(ais(threads=1)), and ais's default, the runs split into one share per BLAS
thread, each on one (evaluate.chains). Prints wall time and time per
distribution, then the one batch's parts timed alone on the same shapes
(medians of 7 x 50 calls):

- floor: the two products of a distribution, v @ W and h @ W.T, alone;
- products: field_h and field_v as generated (the products and the biases);
- free energies: free_energy at the two inverse temperatures given the hidden
  field (the softplus of 2 x runs x nh tempered fields and the visible term);
- draws: h at beta from the given field, v at beta from its field (tempering,
  base field, sigmoid, uniforms, compare);
- bookkeeping: the rest of the measured time per distribution (base energy,
  weights, Python overhead).

With --distributions other than 14500 the schedule is linspace(0, 1); the cost
per distribution does not depend on the betas, so the full run's time is that
times 14,500.

    python bench/ais_time.py [--dtypes float64 float32] [--distributions 14500] [--repeats 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, median_time  # noqa: E402

import pgmdsl  # noqa: E402
from pgmdsl.evaluate import ais, default_schedule  # noqa: E402
from pgmdsl.evaluate.ais import base_draws, base_model, shared_fields  # noqa: E402


def parts(c, data, runs: int) -> dict:
    """Seconds per distribution of each part of the AIS step, timed alone on a base draw of `runs` chains."""
    m, p, rng, beta = c.module, c.params, np.random.default_rng(1), 0.7
    bases = base_model(c, data)
    state = base_draws(c, bases, runs, rng)
    shared = shared_fields(c, state, ["h"])
    pair = np.array([0.6999, 0.7], dtype=c.dtype)
    offset = np.asarray((1 - beta) * bases["v"].field, dtype=c.dtype)
    h = m.sample_h(p, state, rng, beta, None, field=shared["h"])
    W = p["W"]
    fv = m.field_v(p, {"h": h})
    return {
        "floor": median_time(lambda: (state["v"] @ W, h @ W.T)),
        "products": median_time(lambda: (m.field_h(p, state), m.field_v(p, {"h": h}))),
        "free energies": median_time(lambda: m.free_energy(p, state, pair, fields=shared)),
        "draws": median_time(lambda: (m.sample_h(p, state, rng, beta, None, field=shared["h"]),
                                      m.bernoulli_logit(m.anneal(fv, beta, offset), rng))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    parser.add_argument("--distributions", type=int, default=14500)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1, help="times each way is run, alternately")
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
        seconds = {"one batch": [], "threads": []}  # ais(threads=1): one batch on every BLAS thread; default
        estimates = {}
        for _ in range(args.repeats):
            for label, threads in (("one batch", 1), ("threads", None)):  # interleaved
                started = time.perf_counter()
                estimates[label] = ais(c, data, runs=args.runs, schedule=schedule, progress=False, threads=threads)
                seconds[label].append(time.perf_counter() - started)
        for label, times in seconds.items():
            per = float(np.median(times)) / (len(schedule) - 1)
            print(f"RBM 784x500 {dtype}, {label}: {args.runs} runs x {len(schedule) - 1} distributions: "
                  f"{np.median(times):.1f} s ({per * 1e3:.2f} ms per distribution, {per * 14500:.1f} s for 14,500; "
                  f"runs {', '.join(f'{t:.1f}' for t in times)} s); {estimates[label]}")
        per = float(np.median(seconds["one batch"])) / (len(schedule) - 1)
        timed = parts(c, data, args.runs)
        timed["bookkeeping"] = per - sum(v for k, v in timed.items() if k != "floor")
        print("  per distribution: " + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in timed.items())
              + f"; floor x 14,500 = {timed['floor'] * 14500:.1f} s", flush=True)


if __name__ == "__main__":
    main()
