"""scikit-learn's RBM example, with pgmdsl's RBM beside BernoulliRBM in the same Pipeline.

Reproduces scikit-learn's plot_rbm_logistic_classification: the 8x8 digits
nudged by one pixel in each of four directions (5 x 1797 images), minmax-
scaled to [0, 1], split with train_test_split(test_size=0.2, random_state=0);
BernoulliRBM(n_components=100, learning_rate=0.06, n_iter=10, random_state=0)
then LogisticRegression(solver="newton-cg", C=6000), and a raw-pixel
LogisticRegression(C=100) baseline. The classifiers' tol is pinned to 1e-4
(the example uses tol=1, which stops newton-cg early). Ours is
pgmdsl.sklearn.RBM with the same hyper-parameters (batch_size=10, PCD-1),
trained and scored in the same run, in the same Pipeline.

Then, on the same training set: time per epoch of BernoulliRBM and of ours
(fit with n_iter=10, divided by 10; interleaved, medians of --repeats) beside
a hand-fused NumPy PCD-1 (a floor for NumPy at batch 10), and
score_samples means (BernoulliRBM's one-random-flip estimate of the
pseudo-log-likelihood and the exact sum over all units, for both models).

    python bench/sklearn_example.py [--repeats 5] [--seeds 0 1 2 3 4] [--report] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import convolve
from sklearn import datasets, metrics
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import minmax_scale

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

import pgmdsl  # noqa: E402
from pgmdsl.sklearn import RBM  # noqa: E402

HYPER = dict(n_components=100, learning_rate=0.06, n_iter=10, batch_size=10)


def nudge_dataset(X, Y):
    """As in the example: each image plus its copies shifted by one pixel left, right, down and up."""
    direction_vectors = [
        [[0, 1, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 1], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 0], [0, 1, 0]],
    ]

    def shift(x, w):
        return convolve(x.reshape((8, 8)), mode="constant", weights=w).ravel()

    X = np.concatenate([X] + [np.apply_along_axis(shift, 1, X, vector) for vector in direction_vectors])
    Y = np.concatenate([Y for _ in range(5)], axis=0)
    return X, Y


def data():
    X, y = datasets.load_digits(return_X_y=True)
    X = np.asarray(X, "float32")
    X, Y = nudge_dataset(X, y)
    X = minmax_scale(X, feature_range=(0, 1))  # 0-1 scaling (float32, as in the example)
    return train_test_split(X, Y, test_size=0.2, random_state=0)


def classifier(C: float) -> LogisticRegression:
    return LogisticRegression(solver="newton-cg", C=C, tol=1e-4)


def theirs(seed: int = 0, **changes) -> BernoulliRBM:
    return BernoulliRBM(random_state=seed, **{**HYPER, **changes})


def ours(seed: int = 0, **changes) -> RBM:
    return RBM(random_state=seed, **{**HYPER, **changes})


def fit_pipeline(steps, X_train, y_train, X_test, y_test) -> dict:
    pipeline = Pipeline(steps)
    start = time.perf_counter()
    pipeline.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    predicted = pipeline.predict(X_test)
    return {"pipeline": pipeline, "accuracy": metrics.accuracy_score(y_test, predicted), "fit_s": seconds,
            "predicted": predicted}


def example(X_train, X_test, y_train, y_test, report: bool) -> dict:
    runs = {
        "BernoulliRBM + logistic": [("rbm", theirs()), ("logistic", classifier(6000))],
        "pgmdsl RBM + logistic": [("rbm", ours()), ("logistic", classifier(6000))],
        "raw pixels logistic": [("logistic", classifier(100))],
    }
    results = {}
    print("scikit-learn's example (seed 0), LogisticRegression(solver='newton-cg', tol=1e-4)")
    print(f"  {'pipeline':<26} {'accuracy':>9} {'fit s':>8} {'of which RBM s':>15}")
    for name, steps in runs.items():
        result = fit_pipeline(steps, X_train, y_train, X_test, y_test)
        rbm_s = None
        if "rbm" in result["pipeline"].named_steps:
            start = time.perf_counter()
            clone(result["pipeline"].named_steps["rbm"]).fit(X_train)
            rbm_s = time.perf_counter() - start
        results[name] = result
        print(f"  {name:<26} {result['accuracy']:9.4f} {result['fit_s']:8.2f} "
              f"{'' if rbm_s is None else f'{rbm_s:15.2f}'}", flush=True)
        if report:
            print(metrics.classification_report(y_test, result["predicted"], digits=3))
    return results


def _sigmoid(x):
    """In place, as the NumPy prelude's: 0.5 * tanh(x / 2) + 0.5."""
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5


def fused_pcd(X_train, dtype, seed: int = 0):
    """Reference, not a competitor: BernoulliRBM's PCD-1 hand-fused into about 20 NumPy calls per update.

    BernoulliRBM's order: the chains keep hidden samples; each update draws
    the chains' visible units from them, takes the hidden means of the
    minibatch and the chains in one product, and draws the next hidden
    samples from the chains' means. One augmented matrix P = [[W, a], [b, 0]]
    and a column of ones on each side make each conditional one matrix
    product and the whole update (data minus model statistics) one more.
    What NumPy can do at batch 10 on this machine, written by hand.
    """
    epochs, bs, lr, nh = HYPER["n_iter"], HYPER["batch_size"], HYPER["learning_rate"], HYPER["n_components"]
    X = np.asarray(X_train, dtype)
    rng = np.random.default_rng(seed)
    n, nv = X.shape
    X1 = np.ones((n, nv + 1), dtype)
    P = np.zeros((nv + 1, nh + 1), dtype)
    P[:nv, :nh] = rng.normal(0, 0.01, (nv, nh))
    B = np.ones((2 * bs, nv + 1), dtype)  # minibatch rows, then the chains' visible units
    H = np.ones((2 * bs, nh + 1), dtype)  # their hidden means
    scaled, V = np.empty_like(B), np.empty((bs, nv + 1), dtype)
    hs = np.zeros((bs, nh + 1), dtype)  # the chains' hidden samples (BernoulliRBM's h_samples_ start at 0)
    hs[:, nh] = 1
    chains_v, chains_h = B[bs:], H[bs:]
    w = np.concatenate([np.full(bs, lr / bs), np.full(bs, -lr / bs)]).astype(dtype)[:, None]
    for _ in range(epochs):
        X1[:, :nv] = X[rng.permutation(n)]
        for start in range(0, n - bs + 1, bs):
            B[:bs] = X1[start:start + bs]
            np.dot(hs, P.T, out=V)
            _sigmoid(V)
            np.less(rng.random((bs, nv), dtype), V[:, :nv], out=chains_v[:, :nv])
            np.dot(B, P, out=H)
            _sigmoid(H)
            H[:, nh] = 1
            np.multiply(B, w, out=scaled)
            P += scaled.T @ H
            np.less(rng.random((bs, nh), dtype), chains_h[:, :nh], out=hs[:, :nh])
    return P


class GenericRBM(RBM):
    """Ours with the generic update (Trainer.update over the generated module) instead of the packed one."""

    def _options(self) -> dict:
        return {**super()._options(), "fused": False}


def per_epoch(X_train, repeats: int) -> dict:
    """Fit with n_iter=10, divided by 10; the programs take turns so load drift hits them alike.

    The example's data are float32, so BernoulliRBM and ours (whose dtype follows the data's) train in
    float32; the same fits on the data as float64 compare the two in float64.
    """
    X64 = np.asarray(X_train, dtype=np.float64)
    programs = {
        "BernoulliRBM float32": lambda: theirs().fit(X_train),
        "pgmdsl RBM float32": lambda: ours().fit(X_train),
        "pgmdsl generic float32": lambda: GenericRBM(random_state=0, **HYPER).fit(X_train),
        "fused NumPy float32": lambda: fused_pcd(X_train, np.float32),
        "BernoulliRBM float64": lambda: theirs().fit(X64),
        "pgmdsl RBM float64": lambda: ours().fit(X64),
        "pgmdsl generic float64": lambda: GenericRBM(random_state=0, **HYPER).fit(X64),
        "fused NumPy float64": lambda: fused_pcd(X_train, np.float64),
    }
    samples = {name: [] for name in programs}
    trainer = {name: [] for name in programs if name.startswith("pgmdsl")}
    for name, program in programs.items():  # warm-up: compile caches, BLAS, page faults
        program()
    for _ in range(repeats):
        for name, program in programs.items():
            start = time.perf_counter()
            fitted = program()
            samples[name].append((time.perf_counter() - start) / HYPER["n_iter"])
            if name in trainer:
                trainer[name].append(statistics.median(row["seconds"] for row in fitted.history_))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"\ntime per epoch on {len(X_train)} x {X_train.shape[1]} (batch 10, 100 hidden; "
          f"fit(n_iter=10) / 10; median of {repeats}, interleaved; speed-up against BernoulliRBM on data of the "
          f"same dtype; 'generic' is ours with fused=False; 'fused NumPy' is a hand-fused reference PCD-1, "
          f"see fused_pcd)")
    print(f"  {'program':<24} {'ms/epoch':>9} {'min':>7} {'max':>7} {'speed-up':>9} {'trainer ms/epoch':>17}")
    for name, values in samples.items():
        base = medians["BernoulliRBM " + name.split()[-1]]
        inner = f"{1000 * statistics.median(trainer[name]):17.1f}" if name in trainer else ""
        print(f"  {name:<24} {1000 * medians[name]:9.1f} {1000 * min(values):7.1f} {1000 * max(values):7.1f} "
              f"{base / medians[name]:8.2f}x {inner}")
    return {"samples_s": samples, "median_s": medians, "trainer_epoch_s": trainer}


def pseudo_likelihoods(X_train, X_test) -> dict:
    """score_samples means on the test set, both definitions, both models (after 10 epochs, seed 0)."""
    their_rbm = theirs().fit(X_train)
    our_rbm = ours().fit(X_train)
    X = np.asarray(X_test, dtype=np.float64)
    # their weights in our estimator: the exact pseudo-log-likelihood of their model
    their_exact = ours(n_iter=0).fit(X_train)
    their_exact.components_ = their_rbm.components_
    their_exact.intercept_visible_ = their_rbm.intercept_visible_
    their_exact.intercept_hidden_ = their_rbm.intercept_hidden_
    # our weights in a BernoulliRBM: its one-flip estimate for our model
    our_estimate = clone(their_rbm)
    our_estimate.components_ = our_rbm.components_.copy()
    our_estimate.intercept_visible_ = our_rbm.intercept_visible_.copy()
    our_estimate.intercept_hidden_ = our_rbm.intercept_hidden_.copy()
    our_estimate.n_features_in_ = X.shape[1]
    flips = [their_rbm.set_params(random_state=s).score_samples(X).mean() for s in range(20)]
    their_rbm.set_params(random_state=0)
    table = {
        "BernoulliRBM": {"one_flip_seed0": float(their_rbm.score_samples(X).mean()),
                         "one_flip_20_seeds_mean": float(np.mean(flips)),
                         "one_flip_20_seeds_sd": float(np.std(flips)),
                         "exact": float(their_exact.score_samples(X).mean())},
        "pgmdsl RBM": {"one_flip_seed0": float(our_estimate.score_samples(X).mean()),
                       "exact": float(our_rbm.score_samples(X).mean())},
    }
    print("\nscore_samples mean on the test set after 10 epochs (pseudo-log-likelihood, nats per image)")
    print("  one flip: BernoulliRBM's definition, n_features * log sigmoid(F(v with one random unit flipped) - F(v))")
    print("  exact:    pgmdsl's definition, the sum over all units of log sigmoid(F(v with unit i flipped) - F(v))")
    b, o = table["BernoulliRBM"], table["pgmdsl RBM"]
    print(f"  BernoulliRBM: one flip {b['one_flip_seed0']:.3f} (random_state=0; over 20 random_states "
          f"{b['one_flip_20_seeds_mean']:.3f} +- {b['one_flip_20_seeds_sd']:.3f}), exact {b['exact']:.3f}")
    print(f"  pgmdsl RBM:   one flip {o['one_flip_seed0']:.3f} (random_state=0), exact {o['exact']:.3f}")
    return table


def seeds_sweep(X_train, X_test, y_train, y_test, seeds) -> dict:
    """Accuracy of both RBM pipelines over several random_states (the RBM's; the split stays fixed)."""
    rows = {"BernoulliRBM": [], "pgmdsl RBM": []}
    print(f"\naccuracy over random_state in {list(seeds)} (RBM + logistic C=6000)")
    for seed in seeds:
        for name, rbm in (("BernoulliRBM", theirs(seed)), ("pgmdsl RBM", ours(seed))):
            result = fit_pipeline([("rbm", rbm), ("logistic", classifier(6000))], X_train, y_train, X_test, y_test)
            rows[name].append(result["accuracy"])
        print(f"  seed {seed}: BernoulliRBM {rows['BernoulliRBM'][-1]:.4f}  pgmdsl RBM {rows['pgmdsl RBM'][-1]:.4f}",
              flush=True)
    for name, values in rows.items():
        print(f"  {name:<13} mean {np.mean(values):.4f}  min {min(values):.4f}  max {max(values):.4f}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per program (median)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[],
                        help="also compare accuracy over these random_states")
    parser.add_argument("--report", action="store_true", help="print classification reports")
    parser.add_argument("--skip-example", action="store_true", help="timings and score_samples only")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    print(machine())
    import sklearn

    print(f"scikit-learn {sklearn.__version__}, pgmdsl {pgmdsl.__version__}\n")
    X_train, X_test, y_train, y_test = data()
    out = {}
    if not args.skip_example:
        results = example(X_train, X_test, y_train, y_test, args.report)
        out["example"] = {name: {"accuracy": r["accuracy"], "fit_s": r["fit_s"]} for name, r in results.items()}
    out["per_epoch"] = per_epoch(X_train, args.repeats)
    out["score_samples"] = pseudo_likelihoods(X_train, X_test)
    if args.seeds:
        out["seeds"] = seeds_sweep(X_train, X_test, y_train, y_test, args.seeds)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
