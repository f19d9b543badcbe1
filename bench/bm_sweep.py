"""Unit-wise Gibbs sweeps of a Boltzmann machine with lateral connections (models/bm.dgm).

bm with 784 visible and 100 hidden binary units, lateral couplings L (v-v)
and M (h-h), 10 chains, a step = 3 full sweeps (every unit of v one at a
time, then every unit of h). Three programs over the same parameters:

- "generated": the generated module's sample_v and sample_h (the incremental
  sweep: the layer's field once, then (new - old) times the coupling row of
  coupling_v / coupling_h after each unit's draw);
- "hand": an incremental sequential sweep written here in NumPy (field
  precomputed, one rank-one update of the field per unit with the row of L or M);
- "full recompute": the sweep the generator wrote before, rebuilt from the
  module's field_v / field_h: the whole field of the layer again before every
  unit's draw (O(n^2) per unit), for reference.

Generated and hand-written are timed interleaved in one run (bench/common.py
`interleaved`); the full recomputation is timed after them, with fewer
repeats (it is about a hundred times slower). Also checks that, from the same
random numbers, the generated and hand-written sweeps draw the same units.

    python bench/bm_sweep.py [--dtype float32 float64] [--chains 10] [--sweeps 3] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, machine  # noqa: E402

import pgmdsl  # noqa: E402


def hand_written(W, L, M, a, b, dtype):
    """One full sweep as one writes it by hand: fields kept, a rank-one update per unit's draw."""
    n, nh = W.shape

    def sigmoid(x):
        return 0.5 * np.tanh(0.5 * x) + 0.5

    def sweep(v, h, rng):
        batch = len(v)
        field = a + h @ W.T + v @ L  # L symmetric with a zero diagonal
        for i in range(n):
            old = v[:, i].copy()
            v[:, i] = rng.random(batch, dtype=dtype) < sigmoid(field[:, i])
            field += (v[:, i] - old)[:, None] * L[i]
        field = b + v @ W + h @ M
        for j in range(nh):
            old = h[:, j].copy()
            h[:, j] = rng.random(batch, dtype=dtype) < sigmoid(field[:, j])
            field += (h[:, j] - old)[:, None] * M[j]
        return v, h

    return sweep


def generated(module, p):
    def sweep(v, h, rng):
        state = {"v": v, "h": h}
        state["v"] = module.sample_v(p, state, rng)
        state["h"] = module.sample_h(p, state, rng)
        return state["v"], state["h"]

    return sweep


def full_recompute(module, p):
    """The previous generated sweep: anneal(field_L(p, state), beta, offset)[index] for every unit."""
    def layer(name, state, rng):
        units = np.array(state[name], copy=True)
        state = {**state, name: units}
        field = getattr(module, f"field_{name}")
        for i in range(units.shape[1]):
            units[:, i] = module.bernoulli_logit(module.anneal(field(p, state), 1.0, None)[:, i], rng)
        return units

    def sweep(v, h, rng):
        state = {"v": v, "h": h}
        state["v"] = layer("v", state, rng)
        state["h"] = layer("h", state, rng)
        return state["v"], state["h"]

    return sweep


def stepper(sweep, v0, h0, sweeps, seed):
    state = [v0.copy(), h0.copy()]
    rng = np.random.default_rng(seed)

    def step():
        v, h = state
        for _ in range(sweeps):
            v, h = sweep(v, h, rng)
        state[:] = [v, h]

    return step


def run(dtype_name: str, args) -> dict:
    dtype = np.dtype(dtype_name)
    model = pgmdsl.load("bm", n=args.visible, nh=args.hidden)
    c = model.compile(dtype=dtype_name, cache=False, seed=0)
    rng = np.random.default_rng(0)
    # couplings large enough that the chains mix over many states (the library's prior, 0.01, barely couples)
    for name, scale in (("W", 0.05), ("L", 0.05), ("M", 0.05), ("a", 0.5), ("b", 0.5)):
        value = rng.normal(0, scale, c.params[name].shape)
        if name in ("L", "M"):
            value = (value + value.T) / 2
            np.fill_diagonal(value, 0)
        c.params[name] = value.astype(dtype)
    p = c.params
    W, L, M, a, b = (np.asarray(p[k]) for k in ("W", "L", "M", "a", "b"))
    v0 = (rng.random((args.chains, args.visible)) < 0.5).astype(dtype)
    h0 = (rng.random((args.chains, args.hidden)) < 0.5).astype(dtype)
    gen, hand, old = generated(c.module, p), hand_written(W, L, M, a, b, dtype), full_recompute(c.module, p)

    # the same random numbers through the generated and the hand-written sweep: the same draws (to rounding)
    vg, hg = gen(v0.copy(), h0.copy(), np.random.default_rng(9))
    vh, hh = hand(v0.copy(), h0.copy(), np.random.default_rng(9))
    agree = (np.mean(vg == vh) * args.visible + np.mean(hg == hh) * args.hidden) / (args.visible + args.hidden)

    times = interleaved({"generated": stepper(gen, v0, h0, args.sweeps, 1),
                         "hand": stepper(hand, v0, h0, args.sweeps, 1)}, repeats=args.repeats, inner=args.inner)
    step = stepper(old, v0, h0, args.sweeps, 1)
    step()
    samples = []
    for _ in range(args.old_repeats):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
    times["full recompute"] = statistics.median(samples)
    return {"times": times, "agree": agree}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"], choices=["float32", "float64"])
    parser.add_argument("--visible", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--chains", type=int, default=10)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--inner", type=int, default=3)
    parser.add_argument("--old-repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    print(f"bm {args.visible} visible x {args.hidden} hidden, lateral L and M; {args.chains} chains, "
          f"a step = {args.sweeps} sweeps; generated and hand interleaved, median of {args.repeats} x "
          f"{args.inner} steps after warm-up; full recompute: median of {args.old_repeats} steps")
    for dtype in args.dtype:
        result = run(dtype, args)
        times = result["times"]
        print(f"{dtype}:")
        for name, seconds in times.items():
            print(f"  {name:15s} {seconds * 1e3:9.1f} ms/step  {seconds / args.sweeps * 1e3:8.2f} ms/sweep")
        print(f"  generated / hand = {times['generated'] / times['hand']:.2f}  (target <= 2)")
        print(f"  full recompute / generated = {times['full recompute'] / times['generated']:.0f}")
        print(f"  units drawn alike by generated and hand from the same random numbers: {result['agree']:.4%}")


if __name__ == "__main__":
    main()
