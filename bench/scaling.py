"""CD-1 step time as the RBM and the minibatch grow: where call overhead ends and arithmetic begins.

performance.md's scaling benchmark: RBM 784 x H, H in 100, 250, 500, 1000,
2000, minibatch B in 10, 50, 100, 500, 1000, synthetic binary data with
about 13% ones, float32 by default. For each shape, bench/cd1.py's three
CD-1 steps timed interleaved: hand-written NumPy, pgmdsl's packed update
(what fit runs for an RBM) and its generic update. Each sample times enough
steps to last about 50 ms; the figure is the median of --repeats samples.
Also printed: nanoseconds per B·V·H (flat once arithmetic dominates) and
the packed step's time over the hand-written one.

    python bench/scaling.py [--dtype float32] [--hidden 100 500] [--batch 10 100] [--repeats 5] [--json out.json]
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
from cd1 import fused, generated, hand_written  # noqa: E402
from common import machine  # noqa: E402

import pgmdsl  # noqa: E402

VISIBLE = 784


def sample(step, seconds: float = 0.05) -> float:
    """Seconds per step over a run of about `seconds` (at least one step)."""
    start = time.perf_counter()
    step()
    once = time.perf_counter() - start
    count = max(1, int(seconds / max(once, 1e-7)))
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count


def measure(hidden: int, batch: int, dtype: str, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    v0 = (rng.random((batch, VISIBLE)) < 0.13).astype(dtype)
    compiled = pgmdsl.load("rbm", nv=VISIBLE, nh=hidden).compile(dtype=dtype)
    W = np.array(compiled.params["W"])
    a, b = np.zeros(VISIBLE, dtype), np.zeros(hidden, dtype)
    steps = {
        "hand": hand_written(W, a, b, v0, 0.01, np.random.default_rng(1), np.dtype(dtype)),
        "packed": fused(compiled, v0, 0.01, "cd"),
        "generic": generated(pgmdsl.load("rbm", nv=VISIBLE, nh=hidden).compile(dtype=dtype), v0, 0.01, "cd"),
    }
    for step in steps.values():
        sample(step, 0.01)
    samples = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            samples[name].append(sample(step))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--hidden", type=int, nargs="+", default=[100, 250, 500, 1000, 2000])
    parser.add_argument("--batch", type=int, nargs="+", default=[10, 50, 100, 500, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(machine())
    print(f"CD-1, RBM {VISIBLE} x H, batch B, {args.dtype}; median of {args.repeats} samples of about 50 ms, "
          "interleaved; ns/BVH is the packed step's time per B*V*H")
    print(f"  {'H':>5} {'B':>5} {'hand ms':>9} {'packed ms':>10} {'generic ms':>11} {'packed/hand':>12} "
          f"{'generic/hand':>13} {'ns/BVH':>7}")
    rows = []
    for hidden in args.hidden:
        for batch in args.batch:
            t = measure(hidden, batch, args.dtype, args.repeats)
            per = 1e9 * t["packed"] / (batch * VISIBLE * hidden)
            rows.append({"hidden": hidden, "batch": batch, **{f"{k}_s": v for k, v in t.items()}, "ns_per_bvh": per})
            print(f"  {hidden:5d} {batch:5d} {1e3 * t['hand']:9.3f} {1e3 * t['packed']:10.3f} "
                  f"{1e3 * t['generic']:11.3f} {t['packed'] / t['hand']:12.2f} {t['generic'] / t['hand']:13.2f} "
                  f"{per:7.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "dtype": args.dtype, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
