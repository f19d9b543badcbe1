"""Conditional RBM on generated sequences (Taylor, Hinton and Roweis 2006/2011) against a linear autoregressive model.

Data: pgmdsl.datasets.oscillators, 10 sequences of 550 frames, 6 channels
(two oscillators of periods 20 and 50 frames mixed by one random matrix,
tanh, noise 0.05, standardised per channel); sequences 0-7 train, 8-9 are
held out. Model: models/crbm.dgm (Gaussian visible units with learned
log_sigma, binary hidden units, input layer past[order, nv]) at order 6, at
a small hidden layer (8, log p(v | past) exact by enumeration) and a
realistic one (64, by AIS per input row on a subset of held-out windows);
CD-1, batch 100, 200 epochs, momentum 0.9, the brief's per-parameter rates
with a linear decay to 0 (lr_schedule="linear"), float64.

Baselines written here, independent of pgmdsl:

- per-channel Gaussian: mean and variance of each channel over the training frames;
- AR(order): v_t = c + sum_k M_k v_{t-k} + e, least squares on the training
  windows, e ~ N(0, Sigma) with Sigma the residuals' covariance (full, or its
  diagonal); log p(v | past) in closed form;
- persistence: the next frame is the last one (pgmdsl.evaluate.persistence_error).

Checks: the windows (past[k] = the frame k + 1 steps back) are cut again here
and compared with Compiled.windows; the small CRBM's exact log p(v | past) is
recomputed here by enumerating its 2^nh hidden states with v integrated in
closed form; AIS is compared with the exact values on the same rows.

Generation: from the first 50 frames of each held-out sequence, 500 frames
(Compiled.generate: 30 Gibbs sweeps with the past clamped, the visible mean;
also with a visible sample), against the sequence's real 500 frames after
the seed and the AR model's own generation (its mean recursion, and with
drawn residuals): max |x|, standard deviation per channel, the dominant
period (peak of the Hann-windowed spectrum summed over channels).

    python bench/crbm_sequences.py [--seeds 0 1 2] [--rows 50] [--runs 50] [--distributions 1000]
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
from pgmdsl.evaluate import conditional_log_likelihood, persistence_error, prediction_error  # noqa: E402

SEQUENCES, TRAIN, FRAMES, CHANNELS, NOISE = 10, 8, 550, 6, 0.05
ORDER, SMALL, LARGE = 6, 8, 64
EPOCHS, BATCH, MOMENTUM = 200, 100, 0.9
RATES = {"W": 0.01, "A": 0.01, "B": 0.01, "a": 0.01, "b": 0.01, "log_sigma": 0.001}
GIBBS, SEED_FRAMES, GENERATED = 30, 50, 500
PADDED = 8192  # FFT length for the spectral peak (zero-padded: 1/8192 cycles per frame)


# ---- windows and baselines, by hand ----
def windows_by_hand(sequences: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """(past (N, order, C) with past[:, k] the frame k + 1 steps back, frame (N, C)), sequence after sequence."""
    pasts, frames = [], []
    for sequence in sequences:
        for t in range(order, len(sequence)):
            pasts.append(sequence[t - order:t][::-1])
            frames.append(sequence[t])
    return np.array(pasts), np.array(frames)


def gaussian_fit(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = train.reshape(-1, train.shape[-1])
    return flat.mean(0), flat.std(0)


def gaussian_log_likelihood(model: tuple, frames: np.ndarray) -> np.ndarray:
    mean, std = model
    return np.sum(-0.5 * ((frames - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), axis=1)


def design(past: np.ndarray) -> np.ndarray:
    return np.concatenate([past.reshape(len(past), -1), np.ones((len(past), 1))], axis=1)


def ar_fit(past: np.ndarray, frame: np.ndarray) -> dict:
    """Least squares for v_t on the flattened past and an intercept; the residuals' (maximum-likelihood) covariance."""
    coefficients, *_ = np.linalg.lstsq(design(past), frame, rcond=None)
    residuals = frame - design(past) @ coefficients
    return {"coefficients": coefficients, "cov": residuals.T @ residuals / len(residuals)}


def ar_mean(model: dict, past: np.ndarray) -> np.ndarray:
    return design(past) @ model["coefficients"]


def ar_log_likelihood(model: dict, past: np.ndarray, frame: np.ndarray, full: bool = True) -> np.ndarray:
    """log N(v; the AR mean, Sigma) per row, Sigma full or diagonal."""
    cov = model["cov"] if full else np.diag(np.diag(model["cov"]))
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, (frame - ar_mean(model, past)).T)
    return -0.5 * np.sum(z**2, axis=0) - np.sum(np.log(np.diag(chol))) - 0.5 * frame.shape[1] * np.log(2 * np.pi)


def ar_generate(model: dict, seed_frames: np.ndarray, n_frames: int, order: int, rng=None) -> np.ndarray:
    """The AR recursion from each seed sequence ((S, T, C)): its mean, or with residuals drawn from N(0, Sigma)."""
    window = seed_frames[:, ::-1][:, :order].copy()  # most recent first
    chol = np.linalg.cholesky(model["cov"])
    out = []
    for _ in range(n_frames):
        following = ar_mean(model, window)
        if rng is not None:
            following = following + rng.standard_normal(following.shape) @ chol.T
        out.append(following)
        window = np.concatenate([following[:, None], window[:, :-1]], axis=1)
    return np.stack(out, axis=1)


# ---- the CRBM's exact log p(v | past), independently ----
def crbm_log_likelihood(params: dict, past: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """log p(v | past) of crbm.dgm by enumerating the hidden states, v integrated in closed form.

    E = sum_i (v_i - a_i)^2 / (2 s_i^2) - v_i / s_i (m_i + (W h)_i) - (b + c) . h, with m = A . past
    and c = B . past. log of the unnormalised p(v | past): -sum (v - a)^2 / (2 s^2) + (v / s) . m
    + sum_j softplus(b_j + c_j + ((v / s) W)_j); log Z(past) = logsumexp_h [(b + c) . h
    + sum_i (a_i / s_i) mu_i + mu_i^2 / 2] + sum_i log(sqrt(2 pi) s_i), with mu = m + W h.
    """
    W, A, B, a, b = (np.asarray(params[k], dtype=np.float64) for k in ("W", "A", "B", "a", "b"))
    s = np.exp(np.asarray(params["log_sigma"], dtype=np.float64))
    nh = W.shape[1]
    m = np.einsum("ntp,tpi->ni", past, A)
    c = b + np.einsum("ntp,tpj->nj", past, B)
    scaled = frame / s
    unnormalised = (-np.sum((frame - a) ** 2 / (2 * s**2), axis=1) + np.sum(scaled * m, axis=1)
                    + np.sum(np.logaddexp(0.0, c + scaled @ W), axis=1))
    states = np.array([[(k >> j) & 1 for j in range(nh)] for k in range(2**nh)], dtype=np.float64)  # (H, nh)
    mu = m[:, None, :] + (states @ W.T)[None]  # (N, H, C)
    terms = c @ states.T + np.sum((a / s) * mu + mu**2 / 2, axis=2)
    peak = terms.max(axis=1, keepdims=True)
    log_z = peak[:, 0] + np.log(np.exp(terms - peak).sum(axis=1)) + np.sum(np.log(np.sqrt(2 * np.pi) * s))
    return unnormalised - log_z


# ---- generation statistics ----
def spectrum(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in cycles per frame, power summed over channels) of (T, C) frames: mean removed, Hann window."""
    centred = frames - frames.mean(0)
    power = np.abs(np.fft.rfft(centred * np.hanning(len(frames))[:, None], n=PADDED, axis=0)) ** 2
    return np.fft.rfftfreq(PADDED), power.sum(1)


def dominant_period(frames: np.ndarray) -> float:
    frequencies, power = spectrum(frames)
    return float(1.0 / frequencies[1 + np.argmax(power[1:])])


def band_share(frames: np.ndarray, period: float) -> float:
    """The share of the spectrum's power within 2 / T cycles per frame (the Hann window's main lobe) of 1 / period."""
    frequencies, power = spectrum(frames)
    return float(power[np.abs(frequencies - 1 / period) < 2 / len(frames)].sum() / power[1:].sum())


def frame_statistics(frames: np.ndarray, real: np.ndarray) -> dict:
    """For each sequence (S, T, C): max |x|, std per channel over the run and over its last 100 frames, period,
    and the shares of the power at the two generating periods (20 and 50 frames)."""
    return {"max": float(np.abs(frames).max()),
            "share 20": float(np.mean([band_share(f, 20) for f in frames])),
            "share 50": float(np.mean([band_share(f, 50) for f in frames])),
            "std ratio": np.array([f.std(0) / r.std(0) for f, r in zip(frames, real)]),  # (S, C)
            "late std": float(np.mean([f[-100:].std(0).mean() for f in frames])),
            "periods": [dominant_period(f) for f in frames]}


# ---- one data seed ----
def timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def run_seed(seed: int, rows: int, runs: int, distributions: int, epochs: int) -> dict:
    data = pgmdsl.datasets.oscillators(sequences=SEQUENCES, frames=FRAMES, channels=CHANNELS, noise=NOISE, seed=seed)
    train, test = data[:TRAIN], data[TRAIN:]
    result = {"ll": {}, "ll subset": {}, "error": {}, "generation": {}, "seconds": {}, "test": test}

    models = {}
    for nh in (SMALL, LARGE):
        c = pgmdsl.load("crbm", nv=CHANNELS, nh=nh, order=ORDER).compile(dtype="float64")
        fit = dict(epochs=epochs, batch_size=BATCH, lr=RATES, momentum=MOMENTUM, lr_schedule="linear", seed=seed,
                   verbose=0)
        _, result["seconds"][f"fit nh {nh}"] = timed(c.fit, c.windows(train), **fit)
        models[nh] = c
    c = models[SMALL]
    train_w, test_w = c.windows(train), c.windows(test)
    past, frame = windows_by_hand(train, ORDER)
    test_past, test_frame = windows_by_hand(test, ORDER)
    result["windows match"] = all(np.array_equal(mine, theirs) for mine, theirs in (
        (past, train_w["past"]), (frame, train_w["v"]), (test_past, test_w["past"]), (test_frame, test_w["v"])))
    subset = np.sort(np.random.default_rng(seed).choice(len(test_frame), rows, replace=False))
    test_sub = {k: v[subset] for k, v in test_w.items()}

    # (1) log p(v | past) per frame
    gaussian = gaussian_fit(train)
    ar = ar_fit(past, frame)
    per_row = {
        "Gaussian per channel": gaussian_log_likelihood(gaussian, test_frame),
        f"AR({ORDER}) diagonal": ar_log_likelihood(ar, test_past, test_frame, full=False),
        f"AR({ORDER}) full": ar_log_likelihood(ar, test_past, test_frame, full=True),
    }
    exact, result["seconds"][f"exact LL nh {SMALL} (all rows)"] = timed(conditional_log_likelihood, c, test_w)
    per_row[f"CRBM nh {SMALL} exact"] = exact
    result["exact check"] = float(np.max(np.abs(exact - crbm_log_likelihood(c.params, test_past, test_frame))))
    for name, values in per_row.items():
        result["ll"][name] = float(values.mean())
        result["ll subset"][name] = float(values[subset].mean())
    difference = exact - per_row[f"AR({ORDER}) full"]
    result["paired"] = (float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(len(difference))))
    ais_options = dict(runs=runs, schedule=np.linspace(0, 1, distributions), max_states=1, progress=False, seed=seed)
    small_ais, result["seconds"][f"AIS LL nh {SMALL} ({rows} rows)"] = timed(
        conditional_log_likelihood, c, test_sub, **ais_options)
    result["ll subset"][f"CRBM nh {SMALL} AIS"] = float(small_ais.mean())
    result["ais gap"] = small_ais - exact[subset]
    large_ais, result["seconds"][f"AIS LL nh {LARGE} ({rows} rows)"] = timed(
        conditional_log_likelihood, models[LARGE], test_sub, **ais_options)
    result["ll subset"][f"CRBM nh {LARGE} AIS"] = float(large_ais.mean())

    # (2) one-step prediction error
    result["error"]["persistence"] = float(persistence_error(c, test_w).mean())
    result["error"][f"AR({ORDER}) mean"] = float(np.mean((ar_mean(ar, test_past) - test_frame) ** 2))
    for nh, model in models.items():
        error, result["seconds"][f"prediction nh {nh}"] = timed(prediction_error, model, test_w, gibbs_steps=GIBBS,
                                                                 seed=seed)
        result["error"][f"CRBM nh {nh}"] = float(error.mean())

    # (3) generation from the held-out seeds
    seeds, real = test[:, :SEED_FRAMES], test[:, SEED_FRAMES:SEED_FRAMES + GENERATED]
    runs_of = {"real continuation": real}
    for nh, model in models.items():
        runs_of[f"CRBM nh {nh} mean"], result["seconds"][f"generate nh {nh}"] = timed(
            model.generate, GENERATED, seeds, gibbs_steps=GIBBS, mean_field=True, seed=seed)
        runs_of[f"CRBM nh {nh} sampled"] = model.generate(GENERATED, seeds, gibbs_steps=GIBBS, mean_field=False,
                                                          seed=seed)
    runs_of[f"AR({ORDER}) mean"] = ar_generate(ar, seeds, GENERATED, ORDER)
    runs_of[f"AR({ORDER}) with noise"] = ar_generate(ar, seeds, GENERATED, ORDER, np.random.default_rng(seed))
    result["generation"] = {name: frame_statistics(frames, real) for name, frames in runs_of.items()}
    result["frames"] = runs_of
    result["sigma"] = {nh: np.exp(np.asarray(m.params["log_sigma"])) for nh, m in models.items()}
    result["ar residual std"] = np.sqrt(np.diag(ar["cov"]))
    return result


# ---- the report ----
def table(title: str, results: dict, key: str, seeds: list[int], digits: int = 3) -> None:
    names = list(results[seeds[0]][key])
    print(f"\n{title}")
    print(f"{'':28s}" + "".join(f"{'seed ' + str(s):>10s}" for s in seeds) + f"{'mean':>10s}")
    for name in names:
        values = [results[s][key][name] for s in seeds]
        print(f"{name:28s}" + "".join(f"{v:10.{digits}f}" for v in values) + f"{np.mean(values):10.{digits}f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", type=int, default=50, help="held-out windows scored by AIS")
    parser.add_argument("--runs", type=int, default=50, help="AIS runs per row")
    parser.add_argument("--distributions", type=int, default=1000, help="AIS distributions (linear in beta)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--plot", default=str(Path(__file__).resolve().parent / "crbm_sequences.png"))
    args = parser.parse_args()
    began = time.perf_counter()
    print(machine())
    print(f"oscillators: {SEQUENCES} sequences x {FRAMES} frames x {CHANNELS} channels, noise {NOISE}; "
          f"{TRAIN} train, {SEQUENCES - TRAIN} held out ({SEQUENCES - TRAIN} x {FRAMES - ORDER} windows)")
    print(f"CRBM order {ORDER}, nh {SMALL} and {LARGE}; CD-1, batch {BATCH}, {args.epochs} epochs, momentum "
          f"{MOMENTUM}, lr {RATES} decaying linearly to 0, float64")
    print(f"AIS: {args.rows} held-out windows, {args.runs} runs per row, {args.distributions} distributions")
    results = {}
    for seed in args.seeds:
        results[seed] = run_seed(seed, args.rows, args.runs, args.distributions, args.epochs)
        r = results[seed]
        gap = r["ais gap"]
        print(f"seed {seed}: windows as cut here: {'equal' if r['windows match'] else 'DIFFERENT'}; exact LL against "
              f"the enumeration here: {r['exact check']:.2g}; AIS - exact (nh {SMALL}, {args.rows} rows): mean "
              f"{gap.mean():+.4f}, largest |.| {np.abs(gap).max():.3f}; sigma nh {SMALL} "
              f"{np.round(r['sigma'][SMALL], 3)}, nh {LARGE} {np.round(r['sigma'][LARGE], 3)}, AR residual std "
              f"{np.round(r['ar residual std'], 3)}", flush=True)
    seeds = args.seeds

    table("(1) held-out log p(v | past), nats per frame, all held-out windows", results, "ll", seeds)
    paired = ", ".join(f"seed {s} {results[s]['paired'][0]:+.3f} +- {results[s]['paired'][1]:.3f}" for s in seeds)
    print(f"CRBM nh {SMALL} exact - AR({ORDER}) full, per row: {paired} (one s.e., rows taken as independent)")
    table(f"    the same on the AIS subset ({args.rows} windows per seed)", results, "ll subset", seeds)
    table("(2) one-step prediction error (mean squared, per channel), held-out windows", results, "error", seeds, 4)

    print(f"\n(3) generation: {GENERATED} frames from the first {SEED_FRAMES} of each held-out sequence "
          f"({len(seeds) * (SEQUENCES - TRAIN)} runs)")
    print(f"{'':28s}{'max |x|':>9s}{'std / real (mean, range)':>27s}{'std last 100':>14s}{'P(20)':>7s}{'P(50)':>7s}"
          f"   dominant periods")
    for name in results[seeds[0]]["generation"]:
        stats = [results[s]["generation"][name] for s in seeds]
        ratios = np.concatenate([g["std ratio"].ravel() for g in stats])
        periods = ", ".join(f"{p:.1f}" for g in stats for p in g["periods"])
        print(f"{name:28s}{max(g['max'] for g in stats):9.2f}{ratios.mean():10.2f} "
              f"({ratios.min():.2f}-{ratios.max():.2f}){'':6s}{np.mean([g['late std'] for g in stats]):11.2f}"
              f"{np.mean([g['share 20'] for g in stats]):7.2f}{np.mean([g['share 50'] for g in stats]):7.2f}"
              f"   {periods}")
    print("    std / real: each run's std per channel over the real continuation's; P(20), P(50): share of the power\n"
          "    summed over channels within 2/500 cycles per frame of 1/20 and 1/50 (mean over runs)")

    print("\n(4) times, seconds (median over seeds; the machine is shared, so these move between runs)")
    for name in results[seeds[0]]["seconds"]:
        values = [results[s]["seconds"][name] for s in seeds]
        print(f"    {name:32s} {np.median(values):7.2f}   ({', '.join(f'{v:.2f}' for v in values)})")
    print(f"total {time.perf_counter() - began:.1f} s")
    plot(args.plot, results[seeds[0]], seeds[0])


def plot(path: str, result: dict, seed: int) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    frames = result["frames"]
    figure = plt.figure(figsize=(13, 7.5))
    grid = figure.add_gridspec(3, 3)
    t = np.arange(SEED_FRAMES, SEED_FRAMES + GENERATED)
    seeded = result["test"][0, :SEED_FRAMES]
    shown = {"real continuation": ("k", 1.6, "-"), f"CRBM nh {LARGE} mean": ("C3", 1.2, "-"),
             f"AR({ORDER}) mean": ("C0", 1.0, "--")}
    for row, channel in enumerate(range(3)):
        axis = figure.add_subplot(grid[row, :2])
        axis.plot(np.arange(SEED_FRAMES), seeded[:, channel], color="0.5", lw=1.6, label="seed frames")
        for name, (colour, width, style) in shown.items():
            axis.plot(t, frames[name][0, :, channel], color=colour, lw=width, ls=style, label=name)
        axis.set_ylabel(f"channel {channel}")
        axis.set_xlim(0, SEED_FRAMES + GENERATED)
        if row == 0:
            axis.set_title(f"held-out sequence {TRAIN} (data seed {seed}): real frames and generated ones", fontsize=10)
            axis.legend(fontsize=8, ncol=4, loc="upper right")
    axis.set_xlabel("frame")
    axis = figure.add_subplot(grid[:, 2])
    spectra = {"real continuation": "k", f"CRBM nh {LARGE} mean": "C3", f"CRBM nh {SMALL} mean": "C1",
               f"AR({ORDER}) mean": "C0", f"AR({ORDER}) with noise": "C2"}
    for name, colour in spectra.items():
        power = np.mean([spectrum(f)[1] for f in frames[name]], axis=0)
        frequencies = spectrum(frames[name][0])[0]
        axis.semilogy(frequencies[1:], power[1:] / power[1:].max(), color=colour, lw=1.2, label=name)
    for period in (20, 50):
        axis.axvline(1 / period, color="0.6", ls=":", lw=0.8)
        axis.text(1 / period, 1.5, f"1/{period}", ha="center", fontsize=8, color="0.4")
    axis.set_xlim(0, 0.2)
    axis.set_ylim(1e-6, 3)
    axis.set_xlabel("frequency (cycles per frame)")
    axis.set_ylabel("power summed over channels (relative)")
    axis.set_title("spectra of the 500 frames (both held-out sequences)", fontsize=10)
    axis.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
