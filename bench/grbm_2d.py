"""GB-RBM on a whitened 2-D Laplacian mixture (Melchior, Wang and Wiskott 2017; PyDeep's GRBM_2D example).

The protocol (evaluation.md): 100,000 samples of two independent Laplace
sources mixed by a 2x2 matrix with entries U(-0.5, 0.5), ZCA-whitened, first
half train, second half test. 2 visible, 4 hidden, learned variances; CD-1,
batch 1000, 50 epochs, no momentum or decay; learning rates W 1, visible bias
0, hidden bias 1, variance 0.1; W ~ U(-1, 1), hidden bias -||w_j||/2 + log 0.1
(PyDeep's formula, plain norm), sigma 1. Published: exact log Z 1.4042, test
log-likelihood -2.7362 (train -2.7412), learned sigma about 0.74.

Rows of the report:

- pgmdsl: models/gbrbm.dgm (energy (v-a)^2/(2 sigma^2) - b h - v/sigma W h,
  parameter log_sigma) through Compiled.fit, lr {W: 1, a: 0, b: 1,
  log_sigma: 0.1}; log Z and log-likelihoods from pgmdsl.evaluate.
- reference: the same energy and CD-1 update written by hand in NumPy. It
  takes its draws from a Generator seeded like fit's, in fit's order (the
  epoch's permutation, then per batch the hidden draw and the visible noise),
  so on the same data and start it must follow pgmdsl's trajectory to
  rounding; the largest parameter difference is printed.
- PyDeep form: PyDeep's own parametrisation (sigma itself, energy
  (v-a)^2/(2 sigma^2) - b h - v/sigma^2 W h, gradient in sigma) with the same
  rates, by hand, the same draws.
- PyDeep replay: the PyDeep form run on the random stream of PyDeep's example
  (numpy.random.seed(42), Laplace(1, 1) sources, its ZCA, its batches
  train[b:b+1000], which overlap: a slip in the example). It reproduces the
  published run to about 1e-10, which checks the port; pgmdsl and the
  reference are then trained on that run's data and start (disjoint batches).

Every log-likelihood is computed twice: by pgmdsl.evaluate and independently
here, the model as the mixture of 16 Gaussians it is (one per hidden state,
closed form). Baselines: the generating density itself (Laplace sources, the
known mixing after whitening), ICA as PyDeep scores it (FastICA with tanh on
the training half, sources 0.5 sech^2), and a standard Gaussian.

    python bench/grbm_2d.py [--seeds 0 1 ... 9] [--epochs 50] [--plot bench/grbm_2d.png]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

import pgmdsl  # noqa: E402
from pgmdsl.evaluate import exact_log_z, log_likelihood  # noqa: E402

ROWS, VISIBLE, HIDDEN, BATCH = 100_000, 2, 4, 1000
RATES = {"W": 1.0, "a": 0.0, "b": 1.0, "log_sigma": 0.1}  # PyDeep's epsilon = [1, 0, 1, 0.1] for (W, bv, bh, sigma)
PUBLISHED = {"log_z": 1.40422867085, "train": -2.74117592643, "test": -2.73620936613, "sigma": (0.74241256, 0.73101419)}
TARGET = -2.76


# ---- data ----
def zca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ZCA whitening as PyDeep's preprocessing.ZCA: the covariance's SVD, U diag(1/sqrt(lambda)) U^T."""
    mean = x.mean(0, keepdims=True)
    u, lam, _ = np.linalg.svd(np.cov(x - mean, rowvar=False))
    order = np.argsort(lam)[::-1]
    u, lam = u[:, order], lam[order]
    whitening = (u / np.sqrt(lam)) @ u.T
    return (x - mean) @ whitening, whitening


def mixture(seed: int) -> dict:
    """The protocol's data: Laplace(0, 1) sources, mixing U(-0.5, 0.5), ZCA, halves; and a start W ~ U(-1, 1)."""
    rng = np.random.default_rng(seed)
    sources = rng.laplace(0.0, 1.0, (ROWS, 2))
    mixing = rng.uniform(-0.5, 0.5, (2, 2))
    whitened, whitening = zca(sources @ mixing.T)
    weights = rng.uniform(-1.0, 1.0, (VISIBLE, HIDDEN))
    return {"train": whitened[: ROWS // 2], "test": whitened[ROWS // 2:], "mixing": mixing, "whitening": whitening,
            "start": start(weights)}


def pydeep_stream() -> dict:
    """PyDeep's GRBM_2D example, draw for draw: seed 42, generate_2d_mixtures(100000, 1, 1.0), ZCA, the model's W.

    Returns the data and start as `mixture` does, and the RandomState in the
    state the example's training loop finds it.
    """
    rs = np.random.RandomState(42)
    sources = np.concatenate((rs.laplace(1.0, 1.0, ROWS), rs.laplace(1.0, 1.0, ROWS))).reshape(ROWS, 2, order="F")
    mixing = rs.rand(2, 2) - 0.5
    whitened, whitening = zca(sources @ mixing.T)
    # initial_weights='AUTO': U(-1, 1) * 4 sqrt(6 / (nv + nh)), divided by 4 for Gaussian visible units
    weights = (2.0 * rs.rand(VISIBLE, HIDDEN) - 1.0) * np.sqrt(6.0 / (VISIBLE + HIDDEN))
    return {"train": whitened[: ROWS // 2], "test": whitened[ROWS // 2:], "mixing": mixing, "whitening": whitening,
            "start": start(weights), "stream": rs}


def start(weights: np.ndarray) -> dict:
    """The published start: a = 0, sigma = 1, b_j = -||w_j|| / 2 + log 0.1 (each component's weight near 0.1)."""
    return {"W": weights.copy(), "a": np.zeros(VISIBLE), "b": -np.linalg.norm(weights, axis=0) / 2 + np.log(0.1),
            "log_sigma": np.zeros(VISIBLE)}


# ---- the exact density, independently: a mixture of 16 Gaussians ----
HIDDEN_STATES = np.array([[(k >> j) & 1 for j in range(HIDDEN)] for k in range(2**HIDDEN)], dtype=float)


def components(params: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(log mixing weights, means, sigma, log Z) of p(v) = sum_h p(h) N(v; a + sigma * W h, diag sigma^2).

    Integrating v out of exp(-E) for a hidden state h: completing the square
    gives b.h + sum_i ((a_i + sigma_i (W h)_i)^2 - a_i^2) / (2 sigma_i^2) + sum_i log sqrt(2 pi) sigma_i.
    """
    W, a, b, sigma = params["W"], params["a"], params["b"], np.exp(params["log_sigma"])
    means = a + (HIDDEN_STATES @ W.T) * sigma
    log_weights = (HIDDEN_STATES @ b + ((means**2 - a**2) / (2 * sigma**2)).sum(1)
                   + 0.5 * np.log(2 * np.pi * sigma**2).sum())
    log_z = float(np.logaddexp.reduce(log_weights))
    return log_weights - log_z, means, sigma, log_z


def mixture_log_likelihood(params: dict, rows: np.ndarray) -> np.ndarray:
    """log p(v) per row from `components`, independent of pgmdsl's free energies."""
    log_weights, means, sigma, _ = components(params)
    out = np.full(len(rows), -np.inf)
    for log_weight, mean in zip(log_weights, means):
        log_normal = -0.5 * (((rows - mean) / sigma) ** 2).sum(1) - 0.5 * np.log(2 * np.pi * sigma**2).sum()
        np.logaddexp(out, log_weight + log_normal, out=out)
    return out


# ---- the trainers ----
def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5


def fit_pgmdsl(data: dict, seed: int, epochs: int, curve: list) -> tuple:
    """Compiled.fit from the published start; `curve` gets the test log-likelihood after every epoch (not timed)."""
    c = pgmdsl.load("gbrbm", nv=VISIBLE, nh=HIDDEN).compile(dtype="float64")
    for name, value in data["start"].items():
        c.params[name] = value.copy()
    spent = [0.0]

    def record(compiled, row):
        started = time.perf_counter()
        curve.append(mixture_log_likelihood(compiled.params, data["test"]).mean())
        spent[0] += time.perf_counter() - started

    started = time.perf_counter()
    c.fit(data["train"], method="cd", k=1, epochs=epochs, batch_size=BATCH, lr=RATES, momentum=0.0,
          weight_decay=0.0, seed=seed, verbose=0, callbacks=[record])
    return c, time.perf_counter() - started - spent[0]  # fit's time, without the curve's evaluations


def fit_reference(data: dict, seed: int, epochs: int, curve: list) -> tuple[dict, float]:
    """CD-1 on gbrbm.dgm's energy by hand: theta += rate * (data - model statistics) / batch."""
    rng = np.random.default_rng(seed)  # the draws in fit's order: permutation, hidden draw, visible noise
    W, a, b, log_sigma = (data["start"][k].copy() for k in ("W", "a", "b", "log_sigma"))
    train, seconds = data["train"], 0.0
    for _ in range(epochs):
        started = time.perf_counter()
        shuffled = train[rng.permutation(len(train))]
        for first in range(0, len(shuffled), BATCH):
            v0 = shuffled[first:first + BATCH]
            sigma = np.exp(log_sigma)
            h0 = sigmoid(b + (v0 / sigma) @ W)
            drawn = (rng.random(h0.shape) < h0).astype(float)
            mean = a + sigma * (drawn @ W.T)
            v1 = mean + sigma * rng.standard_normal(mean.shape)
            h1 = sigmoid(b + (v1 / sigma) @ W)

            def minus_de_dlog_sigma(v, h):  # -dE/d log sigma = (v - a)^2 / sigma^2 - v (W h) / sigma
                return ((v - a) ** 2 / sigma**2 - v * (h @ W.T) / sigma).sum(0)

            n = len(v0)
            grad_W = ((v0 / sigma).T @ h0 - (v1 / sigma).T @ h1) / n
            grad_a = ((v0 - a).sum(0) - (v1 - a).sum(0)) / sigma**2 / n
            grad_b = (h0.sum(0) - h1.sum(0)) / n
            grad_log_sigma = (minus_de_dlog_sigma(v0, h0) - minus_de_dlog_sigma(v1, h1)) / n
            W += RATES["W"] * grad_W
            a += RATES["a"] * grad_a
            b += RATES["b"] * grad_b
            log_sigma += RATES["log_sigma"] * grad_log_sigma
        seconds += time.perf_counter() - started
        curve.append(mixture_log_likelihood({"W": W, "a": a, "b": b, "log_sigma": log_sigma}, data["test"]).mean())
    return {"W": W, "a": a, "b": b, "log_sigma": log_sigma}, seconds


def fit_pydeep(data: dict, rng, epochs: int, curve: list, overlapping: bool = False) -> tuple[dict, float]:
    """CD-1 in PyDeep's parametrisation (GaussianBinaryVarianceRBM with trainer.CD): W' = sigma W, sigma itself.

    Energy (v - a)^2 / (2 sigma^2) - b h - v / sigma^2 W' h; gradients
    divided by the batch, epsilon (1, 0, 1, 0.1) for (W', a, b, sigma), no
    momentum, hidden probabilities in both phases. rng: a Generator, or the
    example's RandomState (random and standard_normal draw as its
    random_sample and randn). overlapping: the example's batches train[b:b+1000].
    Returns the parameters in gbrbm.dgm's form (W = W' / sigma, log sigma).
    """
    sigma = np.exp(data["start"]["log_sigma"])
    W = data["start"]["W"] * sigma[:, None]
    a, b = data["start"]["a"].copy(), data["start"]["b"].copy()
    eps_W, eps_a, eps_b, eps_sigma = RATES["W"], RATES["a"], RATES["b"], RATES["log_sigma"]
    train, seconds = data["train"], 0.0
    for _ in range(epochs):
        started = time.perf_counter()
        if isinstance(rng, np.random.RandomState):  # the example: train = permutation(train), each epoch's of the last
            shuffled = train = rng.permutation(train)
        else:  # as fit: a permutation of the rows as given
            shuffled = train[rng.permutation(len(train))]
        for k in range(len(shuffled) // BATCH):
            first = k if overlapping else k * BATCH
            v0 = shuffled[first:first + BATCH]
            h0 = sigmoid(b + (v0 / sigma**2) @ W)
            drawn = (h0 > rng.random(h0.shape)).astype(float)
            mean = a + drawn @ W.T
            v1 = mean + rng.standard_normal(mean.shape) * sigma
            h1 = sigmoid(b + (v1 / sigma**2) @ W)

            def minus_de_dsigma(v, h):  # ((v - a)^2 - 2 v (W' h)) / sigma^3
                return ((v - a) ** 2 - 2.0 * v * (h @ W.T)).sum(0) / sigma**3

            n = len(v0)
            grad_W = ((v0 / sigma**2).T @ h0 - (v1 / sigma**2).T @ h1) / n
            grad_a = ((v0 - a).sum(0) - (v1 - a).sum(0)) / sigma**2 / n
            grad_b = (h0.sum(0) - h1.sum(0)) / n
            grad_sigma = (minus_de_dsigma(v0, h0) - minus_de_dsigma(v1, h1)) / n
            W += eps_W * grad_W
            a += eps_a * grad_a
            b += eps_b * grad_b
            sigma += eps_sigma * grad_sigma
        seconds += time.perf_counter() - started
        curve.append(mixture_log_likelihood(as_gbrbm(W, a, b, sigma), data["test"]).mean())
    return as_gbrbm(W, a, b, sigma), seconds


def as_gbrbm(W: np.ndarray, a: np.ndarray, b: np.ndarray, sigma: np.ndarray) -> dict:
    return {"W": W / sigma[:, None], "a": a.copy(), "b": b.copy(), "log_sigma": np.log(sigma)}


# ---- baselines ----
def generating_log_likelihood(data: dict) -> float:
    """The true density of the test half: Laplace(0, 1) sources s - mean(s) = (P^T A)^-1 z.

    log p(z) = sum_i log(exp(-|s_i|) / 2) - log |det P^T A|.
    """
    unmixing = np.linalg.inv(data["whitening"].T @ data["mixing"])  # z = (x - mean) P = (P^T A)(s - mean) row-wise
    sources = data["test"] @ unmixing.T
    return float(np.mean(np.sum(-np.abs(sources) - np.log(2.0), axis=1)) + np.log(abs(np.linalg.det(unmixing))))


def ica_log_likelihood(data: dict, seed: int, iterations: int = 100) -> tuple[float, np.ndarray]:
    """FastICA (symmetric, g = tanh) on the whitened training half; test log-likelihood with 0.5 sech^2 sources.

    As PyDeep's preprocessing.ICA scores it: the unmixing is orthogonal on
    whitened data (log |det| = 0). Returns (mean test log-likelihood, unmixing rows).
    """
    train = data["train"]
    unmixing = np.random.default_rng(seed).standard_normal((2, 2))
    for _ in range(iterations):
        y = np.tanh(train @ unmixing.T)
        unmixing = y.T @ train / len(train) - np.mean(1 - y**2, axis=0)[:, None] * unmixing
        values, vectors = np.linalg.eigh(unmixing @ unmixing.T)
        unmixing = vectors @ np.diag(values**-0.5) @ vectors.T @ unmixing  # (W W^T)^-1/2 W
    y = data["test"] @ unmixing.T
    log_density = np.log(0.5) - 2 * (np.abs(y) + np.log1p(np.exp(-2 * np.abs(y))) - np.log(2))  # log(0.5 sech^2 y)
    return float(np.mean(log_density.sum(1)) + np.log(abs(np.linalg.det(unmixing)))), unmixing


def gaussian_log_likelihood(data: dict) -> float:
    return float(np.mean(-0.5 * (data["test"] ** 2).sum(1)) - np.log(2 * np.pi))


def arms_found(params: dict, data: dict, tolerance: float = 15.0) -> int:
    """How many of the density's four arms (+- each whitened mixing column) have a component offset sigma * w_j
    within `tolerance` degrees."""
    offsets = np.exp(params["log_sigma"])[:, None] * params["W"]
    columns = data["whitening"].T @ data["mixing"]
    found = 0
    for arm in np.concatenate([columns, -columns], axis=1).T:
        cosines = (arm @ offsets) / (np.linalg.norm(arm) * np.linalg.norm(offsets, axis=0))
        found += bool(np.degrees(np.arccos(np.clip(cosines.max(), -1, 1))) < tolerance)
    return found


# ---- the report ----
def evaluated(params: dict, data: dict) -> dict:
    _, _, sigma, log_z = components(params)
    return {"log_z": log_z, "train": float(mixture_log_likelihood(params, data["train"]).mean()),
            "test": float(mixture_log_likelihood(params, data["test"]).mean()), "sigma": sigma,
            "found": arms_found(params, data)}


def line(label: str, result: dict, seconds: float | None) -> str:
    time_text = f"{seconds:6.2f}" if seconds is not None else "     -"
    sigma = " ".join(f"{s:.3f}" for s in result["sigma"])
    found = f"{result['found']}/4" if "found" in result else "  -"
    return (f"{label:30s} {result['log_z']:8.4f} {result['train']:9.4f} {result['test']:9.4f}  {sigma:11s} "
            f"{found:>5s} {time_text}")


def run_seed(data: dict, seed: int, epochs: int) -> dict:
    curves = {"pgmdsl": [], "reference": [], "pydeep": []}
    compiled, pgmdsl_seconds = fit_pgmdsl(data, seed, epochs, curves["pgmdsl"])
    learned = {k: np.asarray(v) for k, v in compiled.params.items()}
    log_z = exact_log_z(compiled)
    theirs = {"log_z": log_z, "train": float(np.mean(log_likelihood(compiled, data["train"], log_z))),
              "test": float(np.mean(log_likelihood(compiled, data["test"], log_z)))}
    ours = evaluated(learned, data)
    agreement = max(abs(theirs[k] - ours[k]) for k in theirs)
    reference, reference_seconds = fit_reference(data, seed, epochs, curves["reference"])
    difference = max(float(np.max(np.abs(reference[k] - learned[k]))) for k in learned)
    pydeep, pydeep_seconds = fit_pydeep(data, np.random.default_rng(seed), epochs, curves["pydeep"])
    return {"pgmdsl": (ours, pgmdsl_seconds), "reference": (evaluated(reference, data), reference_seconds),
            "pydeep": (evaluated(pydeep, data), pydeep_seconds), "agreement": agreement, "difference": difference,
            "curves": curves, "params": learned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--plot", default=str(Path(__file__).resolve().parent / "grbm_2d.png"))
    args = parser.parse_args()
    began = time.perf_counter()
    print(machine())
    print(f"GB-RBM {VISIBLE} x {HIDDEN}, CD-1, batch {BATCH}, {args.epochs} epochs, lr {RATES}, float64; "
          f"{ROWS // 2} train / {ROWS // 2} test rows")
    header = (f"{'':30s} {'log Z':>8s} {'train LL':>9s} {'test LL':>9s}  {'sigma':11s} {'arms':>5s} {'fit s':>6s}")

    # PyDeep's own run, replayed draw for draw, then pgmdsl on its data and start
    stream = pydeep_stream()
    print("\nPyDeep's example (seed 42 stream): its data and start")
    print(header)
    print(f"{'published (PyDeep docs)':30s} {PUBLISHED['log_z']:8.4f} {PUBLISHED['train']:9.4f} "
          f"{PUBLISHED['test']:9.4f}  {' '.join(f'{s:.3f}' for s in PUBLISHED['sigma'])}")
    replay, replay_seconds = fit_pydeep(stream, stream["stream"], args.epochs, [], overlapping=True)
    replayed = evaluated(replay, stream)
    print(line("PyDeep replay (overlapping)", replayed, replay_seconds))
    if args.epochs == 50:
        gap = max(abs(replayed[k] - PUBLISHED[k]) for k in ("log_z", "train", "test"))
        print(f"{'':30s} largest difference from the published figures: {gap:.2g}")
    published_run = run_seed(stream, 42, args.epochs)
    labels = {"pgmdsl": "pgmdsl", "reference": "reference (by hand)", "pydeep": "PyDeep form (disjoint)"}
    for name, label in labels.items():
        print(line(label, *published_run[name]))
    ica, _ = ica_log_likelihood(stream, 42)
    print(f"{'generating density':30s} {'':8s} {'':9s} {generating_log_likelihood(stream):9.4f}")
    print(f"{'ICA (FastICA, sech^2)':30s} {'':8s} {'':9s} {ica:9.4f}")
    print(f"{'Gaussian':30s} {'':8s} {'':9s} {gaussian_log_likelihood(stream):9.4f}")

    # the protocol on fresh seeds
    print(f"\nThe protocol, seeds {args.seeds} (data, mixing and start from default_rng(seed))")
    print(f"{'seed':>4s} " + header[5:])
    runs, baselines = {}, []
    for seed in args.seeds:
        data = mixture(seed)
        runs[seed] = run_seed(data, seed, args.epochs)
        baselines.append((generating_log_likelihood(data), ica_log_likelihood(data, seed)[0],
                          gaussian_log_likelihood(data)))
        for name in ("pgmdsl", "reference", "pydeep"):
            print(f"{seed:4d} " + line(name, *runs[seed][name]), flush=True)
        print(f"{'':4s} {'baselines':25s} generating {baselines[-1][0]:.4f}, ICA {baselines[-1][1]:.4f}, "
              f"Gaussian {baselines[-1][2]:.4f}")
    print("\nmedian over seeds")
    print(header)
    for name, label in (("pgmdsl", "pgmdsl"), ("reference", "reference (by hand)"), ("pydeep", "PyDeep form")):
        results = [runs[s][name][0] for s in args.seeds]
        median = {k: statistics.median(r[k] for r in results) for k in ("log_z", "train", "test")}
        median["sigma"] = np.median([r["sigma"] for r in results], axis=0)
        seconds = statistics.median(runs[s][name][1] for s in args.seeds)
        above = sum(r["test"] > TARGET for r in results)
        every_arm = sum(r["found"] == 4 for r in results)
        print(line(label, median, seconds) + f"   test LL > {TARGET}: {above}/{len(results)}; all four arms: "
              f"{every_arm}/{len(results)}")
    for k, label in enumerate(("generating density", "ICA (FastICA, sech^2)", "Gaussian")):
        print(f"{label:30s} {'':8s} {'':9s} {statistics.median(b[k] for b in baselines):9.4f}")
    every = [published_run] + list(runs.values())
    print(f"\npgmdsl.evaluate against the mixture-of-Gaussians evaluation: largest difference "
          f"{max(r['agreement'] for r in every):.2g} nats (log Z, train, test)")
    print(f"pgmdsl's fit against the hand-written reference (same draws): largest parameter difference "
          f"{max(r['difference'] for r in every):.2g}")
    print(f"total {time.perf_counter() - began:.1f} s")
    plot(args.plot, stream, published_run, runs)


def plot(path: str, stream: dict, published_run: dict, runs: dict) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5.6))
    params = published_run["params"]
    test = stream["test"]
    left.scatter(test[:, 0], test[:, 1], s=1, color="0.55", alpha=0.25, rasterized=True, label="test data")
    grid = np.linspace(-5, 5, 201)
    xx, yy = np.meshgrid(grid, grid)
    density = mixture_log_likelihood(params, np.column_stack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
    contours = left.contour(xx, yy, density, levels=np.arange(-12, -1.5, 1.0), cmap="viridis", linewidths=1)
    left.clabel(contours, fmt="%d", fontsize=7)
    offsets = np.exp(params["log_sigma"])[:, None] * params["W"]
    for j in range(HIDDEN):
        left.annotate("", xy=params["a"] + offsets[:, j], xytext=params["a"],
                      arrowprops={"arrowstyle": "->", "color": "crimson", "lw": 2})
    columns = stream["whitening"].T @ stream["mixing"]
    for k, column in enumerate(columns.T):
        direction = 5 * column / np.linalg.norm(column)
        left.plot([-direction[0], direction[0]], [-direction[1], direction[1]], "k--", lw=0.8,
                  label="whitened mixing directions" if k == 0 else None)
    left.plot([], [], color="crimson", lw=2, label=r"component offsets $\sigma \circ w_j$")
    left.set_xlim(-5, 5)
    left.set_ylim(-5, 5)
    left.set_aspect("equal")
    left.set_title("pgmdsl, PyDeep's data and start: log p(v) contours", fontsize=10)
    left.legend(loc="lower left", fontsize=8)
    epochs = np.arange(1, len(published_run["curves"]["pgmdsl"]) + 1)
    for k, (seed, run) in enumerate(runs.items()):
        colour = f"C{k % 10}"
        right.plot(epochs, run["curves"]["pgmdsl"], color=colour, lw=1.2, label=f"seed {seed}")
        right.plot(epochs, run["curves"]["pydeep"], color=colour, lw=0.8, ls=":")
    right.plot(epochs, published_run["curves"]["pgmdsl"], color="k", lw=2, label="PyDeep's data and start")
    right.axhline(PUBLISHED["test"], color="k", ls="--", lw=0.8, label="published -2.7362")
    right.axhline(TARGET, color="crimson", ls="--", lw=0.8, label=f"target {TARGET}")
    right.set_ylim(-2.9, -2.7)
    right.set_xlabel("epoch")
    right.set_ylabel("exact test log-likelihood (nats per sample)")
    right.set_title("pgmdsl (solid) and the PyDeep form (dotted), per seed", fontsize=10)
    right.legend(fontsize=7, ncol=2, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
