"""CD's divergence on bars-and-stripes 4x4 (Fischer and Igel), with the exact log-likelihood.

The 32-row set (all-off and all-on twice), RBM with 16 hidden units,
parameters U(-0.1, 0.1), full batch, no momentum or decay. CD-1 at lr 0.1
climbs and then falls again (the known divergence); CD-10, PCD-1 and
parallel tempering (Fischer and Igel 2010: 10 inverse temperatures, here
geometric from 1 to 0.1, 32 chains at each, one sweep per temperature and
update, runtime.samplers.pt) beside it. The exact summed log-likelihood
(optimum -108.131) is recorded every 100 updates, averaged over seeds, and
plotted to bench/bars_divergence.png; PT's exchange rates per pair of
neighbouring temperatures are printed.

    python bench/bars_divergence.py [--updates 20000] [--seeds 0 1 2] [--only "PT lr 0.1"]
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
from pgmdsl.evaluate import exact_log_z, log_likelihood  # noqa: E402
from pgmdsl.runtime.train import Trainer  # noqa: E402

OPTIMUM = -108.131


def bars_and_stripes() -> np.ndarray:
    rows = []
    for bits in range(16):
        pattern = np.array([(bits >> k) & 1 for k in range(4)], float)
        rows.append(np.repeat(pattern[:, None], 4, 1).ravel())  # stripes: rows constant
        rows.append(np.repeat(pattern[None, :], 4, 0).ravel())  # bars: columns constant
    return np.array(rows)


def curve(method: str, k: int, lr: float, updates: int, seed: int, every: int) -> tuple[list[float], np.ndarray]:
    """The exact summed log-likelihood every `every` updates, and PT's exchange rates per pair (empty for others)."""
    data = bars_and_stripes()
    c = pgmdsl.load("rbm", nv=16, nh=16).compile(dtype="float64")
    rng = np.random.default_rng(seed)
    for name in c.params:
        c.params[name] = rng.uniform(-0.1, 0.1, c.params[name].shape)
    trainer = Trainer(c, data, method=method, k=k, batch_size=32, lr=lr, seed=seed, chains=32, verbose=0)
    batch = {"v": data}
    values = []
    for update in range(updates + 1):
        if update % every == 0:
            values.append(float(np.sum(log_likelihood(c, data, exact_log_z(c)))))
        if update < updates:
            trainer.update(batch, lr)
    rates = trainer.phase.rates() if hasattr(trainer.phase, "rates") else np.zeros(0)
    return values, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=20000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--plot", default=str(Path(__file__).with_name("bars_divergence.png")))
    parser.add_argument("--only", nargs="+", help="run only these settings (and plot nothing)")
    args = parser.parse_args()
    print(machine())
    assert len(bars_and_stripes()) == 32
    settings = {"CD-1 lr 0.1": ("cd", 1, 0.1), "CD-10 lr 0.1": ("cd", 10, 0.1), "PCD-1 lr 0.1": ("pcd", 1, 0.1),
                "PCD-1 lr 0.01": ("pcd", 1, 0.01), "PT lr 0.1": ("pt", 1, 0.1)}
    chosen = args.only or list(settings)
    curves = {}
    for label in chosen:
        method, k, lr = settings[label]
        started = time.perf_counter()
        runs = [curve(method, k, lr, args.updates, seed, args.every) for seed in args.seeds]
        values = np.array([run[0] for run in runs])
        curves[label] = values.mean(0)
        marks = {u: u // args.every for u in (1000, 5000, 10000, 20000) if u <= args.updates}
        best = int(np.argmax(curves[label])) * args.every
        print(f"{label:14s} " + "  ".join(f"{u // 1000}k: {curves[label][i]:8.2f}" for u, i in marks.items())
              + f"   best {curves[label].max():8.2f} at {best}   ({time.perf_counter() - started:.0f} s)")
        if len(args.seeds) > 1:
            print(f"{'':14s} " + "  ".join(f"{u // 1000}k: {values[:, i].min():8.2f}..{values[:, i].max():.2f}"
                                           for u, i in marks.items()) + "   (range over seeds)")
        rates = np.array([run[1] for run in runs])
        if rates.size:
            print(f"{'':14s} exchange rate per pair (1 first), mean over the run and seeds: "
                  + " ".join(f"{r:.2f}" for r in rates.mean(0)) + f"; mean {rates.mean():.2f}")
    print(f"optimum {OPTIMUM}")
    if args.only:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figure, axes = plt.subplots(figsize=(7, 4))
    steps = np.arange(0, args.updates + 1, args.every)
    for label, values in curves.items():
        axes.plot(steps, values, label=label)
    axes.axhline(OPTIMUM, color="grey", linestyle="--", label="optimum -108.13")
    axes.set_xlabel("updates (full batch)")
    axes.set_ylabel("exact summed log-likelihood")
    axes.set_ylim(-240, -100)
    axes.set_title(f"bars and stripes 4x4, RBM 16 hidden, mean of {len(args.seeds)} seeds")
    axes.legend()
    figure.tight_layout()
    figure.savefig(args.plot, dpi=110)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
