"""AIS against exact log Z on binarised digits (the evaluation protocol of Salakhutdinov and Murray 2008).

scikit-learn's digits, X/16 > 0.5, split test_size=0.2 random_state=0. RBMs
with 16 and 20 hidden units, W ~ N(0, 0.01), visible biases at the logit of
the marginals, batch 20, lr 0.05, 100 epochs, CD-1 and PCD-1 (20 chains), on
several seeds. For each: exact log Z (enumerating the hidden side), AIS with
the default schedule (14,500 distributions, 100 runs), their difference, and
the exact train and test log-likelihoods; then RAISE (the same schedule,
--raise-runs runs) on the first --raise-rows test rows against their exact
mean log-likelihood.

    python bench/ais_digits.py [--seeds 0 1 2] [--hidden 16 20] [--epochs 100]
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
from pgmdsl.evaluate import ais, exact_log_z, log_likelihood, raise_log_likelihood  # noqa: E402


def binarised_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = (load_digits().data / 16 > 0.5).astype(float)
    return train_test_split(data, test_size=0.2, random_state=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--hidden", type=int, nargs="+", default=[16, 20])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--raise-runs", type=int, default=20)
    parser.add_argument("--raise-rows", type=int, default=50)
    args = parser.parse_args()
    train, test = binarised_digits()
    print(machine())
    print(f"binarised digits: {len(train)} train / {len(test)} test rows of 64 bits; {args.epochs} epochs, "
          f"batch 20, lr 0.05; AIS: {args.runs} runs, 14,500 distributions (float64)")
    print(f"{'hidden':>6s} {'method':>6s} {'seed':>4s} {'exact logZ':>11s} {'AIS logZ':>9s} {'AIS-exact':>9s} "
          f"{'+-3se':>7s} {'train LL':>9s} {'test LL':>8s} {'AIS s':>6s} {'RAISE':>8s} {'exact':>8s} {'RAISE s':>7s}")
    worst = worst_raise = 0.0
    for hidden in args.hidden:
        for method in ("cd", "pcd"):
            for seed in args.seeds:
                c = pgmdsl.load("rbm", nv=64, nh=hidden).compile(dtype="float64", seed=seed)
                c.fit(train, method=method, epochs=args.epochs, batch_size=20, lr=0.05, chains=20, seed=seed, verbose=0)
                truth = exact_log_z(c)
                started = time.perf_counter()
                estimate = ais(c, train, runs=args.runs, seed=seed, progress=False)
                seconds = time.perf_counter() - started
                spread = (estimate.log_z_high - estimate.log_z_low) / 2
                train_ll = np.mean(log_likelihood(c, train, truth))
                test_ll = np.mean(log_likelihood(c, test, truth))
                worst = max(worst, abs(estimate.log_z - truth))
                line = (f"{hidden:6d} {method:>6s} {seed:4d} {truth:11.4f} {estimate.log_z:9.4f} "
                        f"{estimate.log_z - truth:+9.4f} {spread:7.4f} {train_ll:9.3f} {test_ll:8.3f} {seconds:6.1f}")
                if args.raise_runs > 0:
                    rows = test[: args.raise_rows]
                    started = time.perf_counter()
                    reverse = raise_log_likelihood(c, rows, base=train, runs=args.raise_runs, seed=seed, progress=False)
                    raise_seconds = time.perf_counter() - started
                    exact_rows = float(np.mean(log_likelihood(c, rows, truth)))
                    worst_raise = max(worst_raise, abs(reverse.mean - exact_rows))
                    line += f" {reverse.mean:8.3f} {exact_rows:8.3f} {raise_seconds:7.1f}"
                print(line, flush=True)
    print(f"largest |AIS - exact| = {worst:.4f} nats (target < 0.1)")
    if args.raise_runs > 0:
        print(f"largest |RAISE - exact| (mean over {args.raise_rows} test rows) = {worst_raise:.4f} nats")


if __name__ == "__main__":
    main()
