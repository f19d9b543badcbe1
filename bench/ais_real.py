"""AIS on real-valued and conditional models: against exact log Z where enumeration is possible, and at sizes where not.

Each model is trained briefly by CD-1 on real data, then log Z is estimated
by AIS (100 runs, the authors' 14,500 distributions) from three seeds and
compared with the exact value, enumerated over the discrete side with the
real-valued side integrated in closed form. At a realistic size, where no
exact value exists, AIS (optimistic in expectation) is bracketed by RAISE
(a stochastic lower bound) on held-out rows.

    python bench/ais_real.py            # about 10 minutes on 2 cores
    python bench/ais_real.py --quick    # fewer distributions: a smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pgmdsl
from pgmdsl.evaluate import ais, conditional_log_likelihood, exact_log_z, log_likelihood, raise_log_likelihood

from common import machine


def patches(count: int, size: int = 8, seed: int = 0) -> np.ndarray:
    """Whitened grey-level patches of scikit-learn's two sample images: DC removed, ZCA-whitened, standardised."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    images = [image.mean(axis=2) / 255.0 for image in load_sample_images().images]
    rows = []
    for _ in range(count):
        image = images[rng.integers(len(images))]
        y, x = rng.integers(0, image.shape[0] - size), rng.integers(0, image.shape[1] - size)
        rows.append(image[y:y + size, x:x + size].ravel())
    rows = np.array(rows)
    rows -= rows.mean(axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(np.cov(rows.T))
    whitening = vectors @ np.diag(1 / np.sqrt(values + 1e-2)) @ vectors.T  # ZCA with a small ridge
    rows = rows @ whitening
    return (rows - rows.mean(0)) / rows.std(0)


def digits(binary: bool, side: int = 8) -> np.ndarray:
    from sklearn.datasets import load_digits

    images = load_digits().images / 16.0
    if side == 4:
        images = images.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4))
    rows = images.reshape(len(images), -1)
    return (rows > 0.5).astype(float) if binary else np.clip(rows, 0, 1)


def sequences(frames: int, seed: int = 0) -> np.ndarray:
    """Four noisy coupled oscillators (a stand-in for motion-capture channels), standardised."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) * 0.1
    phases = np.stack([np.sin(t), np.cos(t), np.sin(2 * t + 0.5), np.sin(t) * np.cos(0.5 * t)], 1)
    rows = phases + 0.1 * rng.standard_normal(phases.shape)
    return (rows - rows.mean(0)) / rows.std(0)


def windows(rows: np.ndarray, order: int) -> dict:
    past = np.stack([rows[order - 1 - k:len(rows) - 1 - k] for k in range(order)], 1)  # past[t, k] = frame t-1-k
    return {"past": past, "v": rows[order:]}


def train(name, data, sizes, epochs, lr, source=None):
    model = pgmdsl.load(name, **sizes) if source is None else pgmdsl.parse(source, filename=f"{name}.dgm")
    c = model.compile(dtype="float64")
    c.fit(data, epochs=epochs, batch_size=50, lr=lr, momentum=0.5, seed=0, verbose=0)
    return c


def against_exact(label, c, data, schedule, inputs=None):
    """AIS from three seeds against the exact log Z (per input row for a conditional model)."""
    start = time.perf_counter()
    truth = exact_log_z(c, inputs=inputs) if inputs is not None else exact_log_z(c)
    exact_time = time.perf_counter() - start
    errors, times = [], []
    for seed in range(3):
        start = time.perf_counter()
        estimate = ais(c, data, runs=100, schedule=schedule, seed=seed, progress=False, inputs=inputs)
        times.append(time.perf_counter() - start)
        errors.append(np.max(np.abs(np.asarray(estimate.log_z) - truth)))
    shown = f"{np.mean(truth):.4f}" + (" (mean over rows)" if inputs is not None else "")
    print(f"| {label} | {shown} | {' / '.join(f'{e:.4f}' for e in errors)} | {np.median(times):.1f} s | "
          f"{exact_time:.1f} s |", flush=True)


def bracketed(label, c, data, held_out, schedule, raise_runs=20):
    start = time.perf_counter()
    estimate = ais(c, data, runs=100, schedule=schedule, seed=0, progress=False)
    ais_time = time.perf_counter() - start
    optimistic = float(np.mean(log_likelihood(c, held_out, estimate.log_z)))
    start = time.perf_counter()
    conservative = raise_log_likelihood(c, held_out, base=data, runs=raise_runs, schedule=schedule, seed=0,
                                        progress=False).mean
    raise_time = time.perf_counter() - start
    print(f"| {label} | {estimate.log_z:.2f} [{estimate.log_z_low:.2f}, {estimate.log_z_high:.2f}] | "
          f"{optimistic:.3f} | {conservative:.3f} | {ais_time:.0f} s | {raise_time:.0f} s |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 distributions instead of 14,500")
    args = parser.parse_args()
    from pgmdsl.evaluate import default_schedule

    schedule = np.linspace(0, 1, 2001) if args.quick else default_schedule()
    print(machine())
    print(f"\nschedule: {len(schedule) - 1} distributions, 100 AIS runs\n")
    patch_rows = patches(6000)
    train_patches, test_patches = patch_rows[:5000], patch_rows[5000:5100]
    grey, binary, small = digits(False), digits(True), digits(True, side=4)
    series = sequences(3000)
    gb_lr = {"W": 0.01, "a": 0.01, "b": 0.01, "log_sigma": 0.001}

    print("| model, data | exact log Z | abs(AIS - exact), seeds 0/1/2 | AIS time | exact time |")
    print("|---|---|---|---|---|")
    c = train("gbrbm", train_patches, dict(nv=64, nh=16), 10, gb_lr)
    against_exact("gbrbm 64-16, whitened 8x8 patches", c, train_patches, schedule)
    small_patches = patches(5000, size=4)  # exact log Z of an mcRBM needs a precision matrix per hidden state
    c = train("mcrbm", small_patches, dict(nv=16, nm=6, nc=6), 5, 0.005)
    against_exact("mcrbm 16-6-6, whitened 4x4 patches", c, small_patches, schedule)
    c = train("relu_rbm", small, dict(nv=16, nh=16), 20, 0.02)
    against_exact("relu_rbm 16-16, 4x4 binarised digits", c, small, schedule)
    truncexp = open_model("truncexp_rbm")
    c = train("truncexp_rbm", grey, dict(nv=64, nh=16), 10, 0.02, source=truncexp)
    against_exact("truncexp RBM 64-16, grey digits in [0, 1]", c, grey, schedule)
    crbm_data = windows(series, 2)
    c = train("crbm", crbm_data, dict(nv=4, nh=12, order=2), 10, 0.005)
    rows = {k: v[:10] for k, v in crbm_data.items()}
    against_exact("crbm 4-12 (order 2), 10 input rows", c, {"v": crbm_data["v"]}, schedule,
                  inputs={"past": rows["past"]})

    print("\n| model, data (realistic size) | AIS log Z [± 3 s.e.] | test LL from AIS | RAISE test LL | AIS time | "
          "RAISE time (100 rows x 20 runs) |")
    print("|---|---|---|---|---|---|")
    c = train("gbrbm", train_patches, dict(nv=64, nh=256), 10, gb_lr)
    bracketed("gbrbm 64-256, patches", c, train_patches, test_patches, schedule)
    c = train("relu_rbm", binary[:1500], dict(nv=64, nh=100), 20, 0.02)
    bracketed("relu_rbm 64-100, binarised digits", c, binary[:1500], binary[1500:1600], schedule)
    c = train("truncexp_rbm", grey[:1500], dict(nv=64, nh=100), 10, 0.02, source=truncexp)
    bracketed("truncexp RBM 64-100, grey digits", c, grey[:1500], grey[1500:1600], schedule)
    c = train("mcrbm", train_patches, dict(nv=64, nm=32, nc=32), 5, 0.005)
    start = time.perf_counter()
    estimate = ais(c, train_patches, runs=100, schedule=schedule, progress=False)
    print(f"| mcrbm 64-32-32, patches | {estimate.log_z:.2f} [{estimate.log_z_low:.2f}, {estimate.log_z_high:.2f}] | "
          f"{np.mean(log_likelihood(c, test_patches, estimate.log_z)):.3f} | - | "
          f"{time.perf_counter() - start:.0f} s | - |", flush=True)
    c = train("crbm", crbm_data, dict(nv=4, nh=100, order=2), 10, 0.005)
    start = time.perf_counter()
    held = {k: v[2000:2020] for k, v in crbm_data.items()}
    values = conditional_log_likelihood(c, held, max_states=1, runs=100, schedule=schedule, progress=False)
    print(f"| crbm 4-100 (order 2), 20 held-out frames | per row | {np.mean(values):.3f} (conditional) | - | "
          f"{time.perf_counter() - start:.0f} s | - |", flush=True)


def open_model(name: str) -> str:
    """A model written in this file: an RBM with truncated exponential visible units (no library file needed)."""
    return """
model truncexp_rbm(nv: int = 64, nh: int = 16)
visible v[nv]: truncexp
hidden  h[nh]: binary
param W[nv, nh] ~ normal(0, 0.01)
param a[nv] = 0
param b[nh] = 0
energy = -a[i]*v[i] - b[j]*h[j] - v[i]*W[i,j]*h[j]
"""


if __name__ == "__main__":
    main()
