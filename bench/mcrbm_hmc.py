"""The mcRBM's image given its hidden units: the exact Gaussian draw against hybrid Monte Carlo, by size.

x | hm, hc is Gaussian with precision I + R diag(hc) R^T. The exact draw
(generated `sample_x`: the precisions, one Cholesky factor each, triangular
solves) costs O(nv^2 nc + nv^3) per chain; a hybrid Monte Carlo transition
(runtime.hmc.HMC, the generated `gradient_x`: products with W and R only)
O(steps nv (nm + nc)). Programs, interleaved in one run (medians), 64
chains, hidden units drawn at random once, R ~ N(0, 1/sqrt(nv)) so the
precision's spread is that of a trained model's at every size:

- "exact": the generated sample_x.
- "hmc": one HMC transition, 20 leapfrog steps, the step size adapted to
  90% acceptance beforehand and then held.
- "hand hmc": the same transition written here in NumPy (x - W hm + R (hc *
  R^T x) as the force, the energy's x terms for the test), the reference.

A transition is not an independent draw: each size also reports the lag-1
autocorrelation of x under HMC (mean over units, 400 transitions of the 64
chains at the adapted step) and, from it, the effective draws per second,
(1 - rho) / (1 + rho) per transition, against the exact draw's 1.

    python bench/mcrbm_hmc.py [--sizes 64 256 784] [--dtype float64] [--repeats 5] [--inner 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, machine  # noqa: E402

import pgmdsl  # noqa: E402
from pgmdsl.runtime.hmc import HMC  # noqa: E402

CHAINS = 64
STEPS = 20


def model(nv: int, dtype: str, seed: int = 0):
    """An mcRBM nv/nv//4/nv//2 with weights of a trained model's scale, and a state with random hidden units."""
    nm, nc = max(nv // 4, 1), max(nv // 2, 1)
    c = pgmdsl.load("mcrbm", nv=nv, nm=nm, nc=nc).compile(dtype=dtype)
    rng = np.random.default_rng(seed)
    c.params["W"] = rng.normal(0, 1 / np.sqrt(nv), (nv, nm)).astype(dtype)
    c.params["R"] = rng.normal(0, 1 / np.sqrt(nv), (nv, nc)).astype(dtype)
    state = {"x": rng.normal(size=(CHAINS, nv)).astype(dtype),
             "hm": (rng.random((CHAINS, nm)) < 0.3).astype(dtype), "hc": (rng.random((CHAINS, nc)) < 0.5).astype(dtype)}
    return c, state


def hand_transition(W, R, hm, hc, step: float, rng):
    """One HMC transition of x written out: leapfrog on E(x) = |x|^2/2 - x.W hm + sum_k hc_k (x.R_k)^2 / 2."""
    mean_field = hm @ W.T

    def energy(x):
        u = x @ R
        return 0.5 * (x * x).sum(1) - (x * mean_field).sum(1) + 0.5 * (hc * u * u).sum(1)

    def force(x):
        return x - mean_field + (hc * (x @ R)) @ R.T

    def transition(x):
        p0 = rng.standard_normal(x.shape, dtype=x.dtype)
        start = energy(x) + 0.5 * (p0 * p0).sum(1)
        y, p = x, p0 - 0.5 * step * force(x)
        for k in range(STEPS):
            y = y + step * p
            if k < STEPS - 1:
                p = p - step * force(y)
        p = p - 0.5 * step * force(y)
        end = energy(y) + 0.5 * (p * p).sum(1)
        accept = np.log(rng.random(len(x), dtype=x.dtype)) < start - end
        return np.where(accept[:, None], y, x)
    return transition


def lag_one(c, state, hmc: HMC, transitions: int = 400) -> float:
    """Mean over units of the lag-1 autocorrelation of x along HMC transitions (the chains pooled)."""
    rng = np.random.default_rng(7)
    current = dict(state)
    current["x"] = c.module.sample_x(c.params, current, rng)  # start in the conditional
    path = []
    for _ in range(transitions):
        current["x"] = hmc(c.params, current, rng)
        path.append(np.asarray(current["x"], dtype=np.float64))
    path = np.stack(path)  # (transitions, chains, nv)
    centred = path - path.mean(axis=0)
    return float(np.mean((centred[1:] * centred[:-1]).mean(axis=(0, 1)) / (centred * centred).mean(axis=(0, 1))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 784])
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--inner", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    print(f"{CHAINS} chains, {STEPS} leapfrog steps, {args.dtype}; medians of {args.repeats} x {args.inner} calls")
    print("| nv/nm/nc | exact ms | hmc ms | hand hmc ms | exact / hmc | hmc / hand | step | acceptance | lag-1 rho "
          "| effective draws/s, exact | hmc |")
    for nv in args.sizes:
        c, state = model(nv, args.dtype)
        rng = np.random.default_rng(1)
        hmc = HMC(c, "x", steps=STEPS, step_size=0.1)
        for _ in range(100):  # adapt the step size, then hold it
            state["x"] = hmc(c.params, state, rng)
        hmc.adapt = False
        hand = hand_transition(*(np.asarray(c.params[n]) for n in ("W", "R")), state["hm"], state["hc"],
                               hmc.step_size, np.random.default_rng(2))
        xs = {"hand": state["x"]}

        def hand_step():
            xs["hand"] = hand(xs["hand"])
        steps = {
            "exact": lambda: c.module.sample_x(c.params, state, rng),
            "hmc": lambda: hmc(c.params, state, rng),
            "hand hmc": hand_step,
        }
        times = interleaved(steps, repeats=args.repeats, inner=args.inner)
        acceptance = hmc.acceptance
        rho = lag_one(c, state, hmc)
        effective = (1 - rho) / (1 + rho)
        nm, nc = c.model.sizes["nm"], c.model.sizes["nc"]
        print(f"| {nv}/{nm}/{nc} | {times['exact'] * 1e3:.2f} | {times['hmc'] * 1e3:.2f} | "
              f"{times['hand hmc'] * 1e3:.2f} | {times['exact'] / times['hmc']:.2f} | "
              f"{times['hmc'] / times['hand hmc']:.2f} | {hmc.step_size:.3f} | {acceptance:.2f} | {rho:.3f} | "
              f"{CHAINS / times['exact']:.0f} | {CHAINS * effective / times['hmc']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
