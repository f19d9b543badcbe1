"""Does pretraining matter for a deep Boltzmann machine? The DBM recipe against joint training alone, on digits.

Salakhutdinov and Hinton (2009, 2012) train a DBM in two phases: greedy
pretraining pair by pair (RBMs with doubled inputs, runtime.recipes.dbm), then
joint training by PCD with a mean-field data phase. Their claim is that the
second phase alone, from small random weights, learns a much worse model.
This benchmark checks it with pgmdsl's recipe: for each seed, size and joint
learning rate, one DBM trained by the recipe (`dbm.train(c, rows, seed=s)`:
50 pretraining epochs per pair, then the joint schedule dbm.JOINT) and one
trained by the same joint schedule from the same random initialisation
(`pretraining=False`): same data, seed, epochs, chains. Joint training runs 50
epochs (15 minibatches of 100 each, 750 updates: the paper's schedule but
shorter, so that the run fits in ~20 minutes on 2 cores), at the paper's lr 1e-3
and at 5e-3 (every seed on the small DBM, the first seed on the large one), so
that the comparison is not only about a small rate.

Data: scikit-learn's digits, X/16 > 0.5 (datasets.digits(binarize=True)),
split test_size=0.2 random_state=0 (1437 train / 360 test rows of 64 bits).

Evaluation: the mean-field lower bound on log p(v) (evaluate.lower_bound,
30 mean-field steps), per row, averaged over the test and training rows, with
log Z from AIS (100 runs; the default 14,500-distribution schedule on the small
DBM, a 5,000-distribution one of the same shape on the large, checked against
exact log Z on the small one). On the
small DBM 64-20-12 log Z is also exact (the 2^20 states of h1, v and h2 summed
out) and so is log p(v) (2^12 states of h2 per row, h1 summed out): the AIS
estimate and the bound's gap are checked there. The larger DBM 64-100-50 has
only AIS. A plain RBM 64-n1 (the default CLI recipe: PCD-1, lr 0.05, batch 10,
20 epochs) is the reference point, its log p(v) exact given log Z (exact for
64-20, AIS for 64-100).

The bound curves: every 10 joint epochs a monitor scores the test rows' bound
with a cheap log Z (AIS, 50 runs, 500 distributions) -- a picture of
progress, not the reported figures; its time is subtracted from the joint
phase's seconds. The recipe arm runs dbm.pretrain then dbm.train(...,
pretraining=False), which is what dbm.train does, so that the curve can start
at the pretrained model (epoch 0).

Figures: bench/dbm_pretraining.png (64 samples of each DBM, 64-100-50, seed 0:
conditional means of v after 1,000 Gibbs sweeps from random states, for both
joint learning rates) and bench/dbm_pretraining_bounds.png (the curves).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/dbm_pretraining.py [--seeds 0 1 2]
        [--epochs 50] [--rates 0.001 0.005] [--other-rate-seeds 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402

import pgmdsl  # noqa: E402
from pgmdsl.evaluate import ais, exact_log_z, log_likelihood, lower_bound  # noqa: E402
from pgmdsl.runtime.recipes import dbm  # noqa: E402

SIZES = {"small": (20, 12), "large": (100, 50)}
MONITOR_EVERY = 10
MONITOR_SCHEDULE = np.linspace(0.0, 1.0, 501)
# The large DBM's AIS: the default schedule's shape at a third of its length (5,000 distributions), checked against
# exact log Z on the small DBM beside the default one.
SHORT_SCHEDULE = np.concatenate([np.linspace(0, 0.5, 200, endpoint=False), np.linspace(0.5, 0.9, 1300, endpoint=False),
                                 np.linspace(0.9, 1.0, 3500, endpoint=False), [1.0]])


def binarised_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = (load_digits().data / 16 > 0.5).astype(float)  # as datasets.digits(binarize=True)
    return train_test_split(data, test_size=0.2, random_state=0)


class BoundMonitor:
    """fit(monitor=) function: every MONITOR_EVERY epochs the mean-field bound of the rows it is given with a
    cheap AIS log Z (computed on the train call, reused on the validation call); NaN on the other epochs."""

    def __init__(self, train_rows, seed: int):
        self.train_rows, self.seed, self.calls, self.seconds, self.log_z = train_rows, seed, 0, 0.0, None

    def __call__(self, compiled, rows):
        epoch, which = divmod(self.calls, 2)  # the trainer scores the train sample, then the validation rows
        self.calls += 1
        count = len(next(iter(rows.values())))
        if (epoch + 1) % MONITOR_EVERY:
            return np.full(count, np.nan)
        started = time.perf_counter()
        if which == 0:
            self.log_z = ais(compiled, self.train_rows, runs=50, schedule=MONITOR_SCHEDULE, seed=self.seed,
                             progress=False).log_z
        bound = lower_bound(compiled, rows, self.log_z)
        self.seconds += time.perf_counter() - started
        return bound


def quick_bound(compiled, train, test, seed):
    log_z = ais(compiled, train, runs=50, schedule=MONITOR_SCHEDULE, seed=seed, progress=False).log_z
    return float(np.mean(lower_bound(compiled, test, log_z)))


def evaluate(c, train, test, seed, exact: bool) -> dict:
    started = time.perf_counter()
    estimate = ais(c, train, runs=100, schedule=None if exact else SHORT_SCHEDULE, seed=seed, progress=False)
    result = {"ais_s": time.perf_counter() - started, "ais": estimate.log_z,
              "ais_pm": (estimate.log_z_high - estimate.log_z_low) / 2}
    result["test_bound"] = float(np.mean(lower_bound(c, test, estimate.log_z)))
    result["train_bound"] = float(np.mean(lower_bound(c, train, estimate.log_z)))
    if exact:
        started = time.perf_counter()
        truth = exact_log_z(c)
        result["ais_short"] = ais(c, train, runs=100, schedule=SHORT_SCHEDULE, seed=seed, progress=False).log_z
        result.update(exact=truth, test_ll=float(np.mean(log_likelihood(c, test, truth))),
                      train_ll=float(np.mean(log_likelihood(c, train, truth))),
                      test_bound_exact=float(np.mean(lower_bound(c, test, truth))), exact_s=time.perf_counter() - started)
    return result


def train_dbm(size, arm, lr, seed, epochs, train, test):
    n1, n2 = SIZES[size]
    c = pgmdsl.load("dbm", nv=64, n1=n1, n2=n2).compile(dtype="float64", seed=seed)
    monitor = BoundMonitor(train, seed)
    curve = []
    pre_s = 0.0
    if arm == "recipe":
        histories = dbm.pretrain(c, train, seed=seed)  # dbm.train's first line, with its default PRETRAINING
        pre_s = sum(row["seconds"] for history in histories for row in history)
    curve.append((0, quick_bound(c, train, test, seed)))
    started = time.perf_counter()
    _, history = dbm.train(c, train, pretraining=False, seed=seed, epochs=epochs, lr=lr, verbose=0,
                           validation=test, monitor={"bound": monitor})
    joint_s = time.perf_counter() - started - monitor.seconds
    curve += [(row["epoch"], row["validation_bound"]) for row in history if np.isfinite(row["validation_bound"])]
    return c, {"pre_s": pre_s, "joint_s": joint_s, **evaluate(c, train, test, seed, exact=size == "small")}, curve


def train_rbm(n1, seed, epochs, train, test):
    c = pgmdsl.load("rbm", nv=64, nh=n1).compile(dtype="float64", seed=seed)
    started = time.perf_counter()
    c.fit(train, method="pcd", k=1, epochs=epochs, batch_size=10, lr=0.05, momentum=0.0, seed=seed, verbose=0)
    result = {"train_s": time.perf_counter() - started}
    estimate = ais(c, train, runs=100, seed=seed, progress=False)
    result.update(ais=estimate.log_z, ais_pm=(estimate.log_z_high - estimate.log_z_low) / 2,
                  test_ll_ais=float(np.mean(log_likelihood(c, test, estimate.log_z))),
                  train_ll_ais=float(np.mean(log_likelihood(c, train, estimate.log_z))))
    if n1 <= 20:
        truth = exact_log_z(c)
        result.update(exact=truth, test_ll=float(np.mean(log_likelihood(c, test, truth))),
                      train_ll=float(np.mean(log_likelihood(c, train, truth))))
    return result


def mosaic(images, fill=1.0):
    count, height, width = images.shape
    columns = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    out = np.full((rows * (height + 1) + 1, columns * (width + 1) + 1), fill)
    for k, image in enumerate(images):
        top, left = 1 + (k // columns) * (height + 1), 1 + (k % columns) * (width + 1)
        out[top:top + height, left:left + width] = image
    return out


def samples_figure(panels, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted({r for r, _ in panels})
    columns = sorted({c for _, c in panels}, key=lambda name: ["training data", "recipe", "no pretraining"].index(name))
    figure, axes = plt.subplots(len(rows), len(columns), figsize=(3.2 * len(columns), 3.5 * len(rows)), squeeze=False)
    for i, r in enumerate(rows):
        for j, column in enumerate(columns):
            ax = axes[i][j]
            ax.set_axis_off()
            if (r, column) in panels:
                title, images = panels[(r, column)]
                ax.imshow(mosaic(images.reshape(-1, 8, 8)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(title, fontsize=8)
    figure.suptitle("DBM 64-100-50 on binarised digits, seed 0: p(v | h1) after 1,000 Gibbs sweeps", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def curves_figure(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({key[0] for key in curves}, key=list(SIZES).index)
    rates = sorted({key[2] for key in curves})
    figure, axes = plt.subplots(1, len(sizes) * len(rates), figsize=(4.2 * len(sizes) * len(rates), 3.6), squeeze=False)
    colours = {"recipe": "C0", "no pretraining": "C3"}
    for p, (size, lr) in enumerate((s, r) for s in sizes for r in rates):
        ax = axes[0][p]
        for (s, arm, rate, seed), curve in curves.items():
            if s == size and rate == lr:
                epochs, values = zip(*curve)
                ax.plot(epochs, values, color=colours[arm], alpha=0.8, marker="o", markersize=2,
                        label=arm if seed == min(k[3] for k in curves) else None)
        n1, n2 = SIZES[size]
        ax.set_title(f"64-{n1}-{n2}, joint lr {lr:g}", fontsize=10)
        ax.set_xlabel("joint epoch (0: after pretraining / at init)")
        ax.set_ylabel("test mean-field bound (nats, rough log Z)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def med(values):
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=50, help="joint epochs (both arms)")
    parser.add_argument("--other-rate-seeds", type=int, default=1,
                        help="how many of the seeds the large DBM runs at the rates after the first")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.001, 0.005], help="joint learning rates")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    begun = time.perf_counter()
    train, test = binarised_digits()
    print(machine())
    print(f"binarised digits: {len(train)} train / {len(test)} test rows; pretraining {dbm.PRETRAINING}; joint "
          f"{args.epochs} epochs of {dbm.JOINT} but lr; AIS 100 runs, 14,500 (small) / 5,000 (large) distributions; float64", flush=True)
    results, curves, panels = {}, {}, {}
    panels[(0, "training data")] = ("training data (first 64)", train[:64])
    for seed in args.seeds:
        for lr in args.rates:
            for size in args.sizes:
                if size == "large" and lr != args.rates[0] and seed not in args.seeds[:args.other_rate_seeds]:
                    continue
                arms = ("recipe", "no pretraining") if seed % 2 == 0 else ("no pretraining", "recipe")  # interleaved
                for arm in arms:
                    c, r, curve = train_dbm(size, "recipe" if arm == "recipe" else "random", lr, seed, args.epochs,
                                            train, test)
                    results[(size, arm, lr, seed)] = r
                    curves[(size, arm, lr, seed)] = curve
                    extra = ""
                    if "exact" in r:
                        extra = (f" exact logZ {r['exact']:.3f} (AIS-exact {r['ais'] - r['exact']:+.3f}, 5,000-step AIS"
                                 f"-exact {r['ais_short'] - r['exact']:+.3f}) test LL "
                                 f"{r['test_ll']:.3f} train LL {r['train_ll']:.3f} bound(exact Z) "
                                 f"{r['test_bound_exact']:.3f}")
                    print(f"{size} 64-{SIZES[size][0]}-{SIZES[size][1]} {arm:>14s} lr {lr:g} seed {seed}: "
                          f"pre {r['pre_s']:.1f}s joint {r['joint_s']:.1f}s AIS {r['ais_s']:.1f}s logZ {r['ais']:.3f}"
                          f"+-{r['ais_pm']:.3f} test bound {r['test_bound']:.3f} train bound {r['train_bound']:.3f}"
                          + extra, flush=True)
                    if seed == args.seeds[0] and size == "large":
                        state = c.sample(64, steps=1000, seed=seed)
                        means = np.asarray(c.mean("v", state))
                        panels[(args.rates.index(lr), arm)] = (
                            f"{arm}, joint lr {lr:g}\ntest bound {r['test_bound']:.2f}", means)
    rbm = {}
    for seed in args.seeds:
        for size in args.sizes:
            n1 = SIZES[size][0]
            rbm[(n1, seed)] = r = train_rbm(n1, seed, 20, train, test)
            extra = f" exact logZ {r['exact']:.3f} test LL {r['test_ll']:.3f}" if "exact" in r else ""
            print(f"RBM 64-{n1} seed {seed}: {r['train_s']:.1f}s logZ(AIS) {r['ais']:.3f}+-{r['ais_pm']:.3f} test LL "
                  f"{r['test_ll_ais']:.3f} train LL {r['train_ll_ais']:.3f}{extra}", flush=True)
    # the three-layer DBM, by the recipe, once
    c3 = pgmdsl.load("dbm3", nv=64, n1=100, n2=50, n3=25).compile(dtype="float64", seed=args.seeds[0])
    started = time.perf_counter()
    histories, _ = dbm.train(c3, train, seed=args.seeds[0], epochs=args.epochs, lr=args.rates[0], verbose=0)
    seconds3 = time.perf_counter() - started
    pre3 = sum(row["seconds"] for history in histories for row in history)
    r3 = evaluate(c3, train, test, args.seeds[0], exact=False)
    print(f"DBM3 64-100-50-25 recipe lr {args.rates[0]:g} seed {args.seeds[0]}: pre {pre3:.1f}s joint "
          f"{seconds3 - pre3:.1f}s AIS {r3['ais_s']:.1f}s logZ {r3['ais']:.3f}+-{r3['ais_pm']:.3f} test bound "
          f"{r3['test_bound']:.3f} train bound {r3['train_bound']:.3f}", flush=True)

    samples_figure(panels, HERE / "dbm_pretraining.png")
    curves_figure(curves, HERE / "dbm_pretraining_bounds.png")

    print(f"\nmedians over seeds {args.seeds} (nats per image; bound = mean-field lower bound with AIS log Z)")
    print("| model | arm | joint lr | test bound | train bound | AIS log Z (+-3 s.e.) | exact log Z | "
          "test log p (exact) | train log p (exact) | pretrain s | joint s | AIS s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        n1, n2 = SIZES[size]
        for lr in args.rates:
            for arm in ("recipe", "no pretraining"):
                rs = [results[(size, arm, lr, s)] for s in args.seeds if (size, arm, lr, s) in results]
                get = lambda key: med([r[key] for r in rs])  # noqa: E731
                exact = "exact" in rs[0]
                print(f"| DBM 64-{n1}-{n2} | {arm} | {lr:g} ({len(rs)} seed{'s' if len(rs) > 1 else ''}) | {get('test_bound'):.2f} | {get('train_bound'):.2f} | "
                      f"{get('ais'):.2f} (+-{get('ais_pm'):.2f}) | "
                      + (f"{get('exact'):.2f} | {get('test_ll'):.2f} | {get('train_ll'):.2f} | " if exact else
                         "- | - | - | ")
                      + f"{get('pre_s'):.1f} | {get('joint_s'):.1f} | {get('ais_s'):.1f} |")
        rs = [rbm[(n1, s)] for s in args.seeds]
        get = lambda key: med([r[key] for r in rs])  # noqa: E731
        exact = "exact" in rs[0]
        print(f"| RBM 64-{n1} | PCD-1, 20 epochs | 0.05 | {get('test_ll_ais'):.2f} (log p) | "
              f"{get('train_ll_ais'):.2f} (log p) | {get('ais'):.2f} (+-{get('ais_pm'):.2f}) | "
              + (f"{get('exact'):.2f} | {get('test_ll'):.2f} | {get('train_ll'):.2f} | " if exact else "- | - | - | ")
              + f"- | {get('train_s'):.1f} | - |")
    print(f"| DBM3 64-100-50-25 (seed {args.seeds[0]}) | recipe | {args.rates[0]:g} | {r3['test_bound']:.2f} | "
          f"{r3['train_bound']:.2f} | {r3['ais']:.2f} (+-{r3['ais_pm']:.2f}) | - | - | - | {pre3:.1f} | "
          f"{seconds3 - pre3:.1f} | {r3['ais_s']:.1f} |")
    print("\nper seed: test bound, recipe minus no pretraining")
    for size in args.sizes:
        for lr in args.rates:
            differences = [results[(size, "recipe", lr, s)]["test_bound"] - results[(size, "no pretraining", lr, s)]["test_bound"]
                           for s in args.seeds if (size, "recipe", lr, s) in results]
            print(f"  64-{SIZES[size][0]}-{SIZES[size][1]} lr {lr:g}: " + ", ".join(f"{d:+.2f}" for d in differences))
    small = [r for (size, *_), r in results.items() if size == "small"]
    if small:
        print(f"largest |AIS - exact log Z| on 64-20-12: {max(abs(r['ais'] - r['exact']) for r in small):.4f} (default "
              f"schedule), {max(abs(r['ais_short'] - r['exact']) for r in small):.4f} (5,000 distributions); "
              f"largest gap exact log p - bound (test): {max(r['test_ll'] - r['test_bound_exact'] for r in small):.3f}")
    print(f"figures: {HERE / 'dbm_pretraining.png'}, {HERE / 'dbm_pretraining_bounds.png'}")
    print(f"total {time.perf_counter() - begun:.0f} s")


if __name__ == "__main__":
    main()
