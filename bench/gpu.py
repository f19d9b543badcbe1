"""CD-1 step of an RBM on a GPU: the generated CuPy module against a hand-written CuPy CD-1.

RBM 784 x 500, batch 100, float32, synthetic binary data with about 13% ones
(MNIST-like), as bench/cd1.py. Both GPU programs do the same work per step:
hidden probabilities, a hidden sample, a visible sample, hidden probabilities
again, and the parameter update from data minus model statistics. They are
timed interleaved in one run (each sample: synchronize, 50 steps,
synchronize), after a warm-up that also compiles the fused kernels; the
figures are medians over the repeats. Also timed: the step's five matrix
products alone on the GPU (a floor), and the NumPy backend's CD-1 on the CPU.

Before timing, one step of each GPU program from the same parameters and
the same random stream checks that they compute the same update.

    python bench/gpu.py [--dtype float32|float64] [--batch 100] [--hidden 500]
                        [--repeats 7] [--steps 50] [--no-cpu] [--json out.json]

Needs CuPy and an NVIDIA GPU (pip install cupy-cuda12x); without them it
says so and exits with status 0 having measured nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cd1 import generated, hand_written  # noqa: E402  (the same two programs as the CPU benchmark)
from common import machine  # noqa: E402

import pgmdsl  # noqa: E402


def gpu_or_reason():
    """(cupy, None) when CuPy and a GPU are usable, else (None, why not)."""
    if os.environ.pop("PGMDSL_CUPY_STANDIN", None):
        print("note: PGMDSL_CUPY_STANDIN unset for this run: the benchmark needs the real CuPy")
    try:
        import cupy
    except ImportError as error:
        return None, f"CuPy is not installed ({error}); pip install cupy-cuda12x"
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            return None, "CuPy found no GPU"
        (cupy.arange(4, dtype=cupy.float32) * 2).sum().item()  # a first kernel: driver and NVRTC work
    except Exception as error:  # CUDARuntimeError, CompileException, missing CUDA libraries
        return None, f"CuPy is installed but cannot use a GPU here ({type(error).__name__}: {error})"
    return cupy, None


def gpu_details(cupy) -> dict:
    runtime = cupy.cuda.runtime
    device = cupy.cuda.Device()
    properties = runtime.getDeviceProperties(device.id)
    name = properties["name"]
    name = name.decode() if isinstance(name, bytes) else name

    def version(number):
        return f"{number // 1000}.{number % 1000 // 10}"

    return {
        "gpu": name,
        "compute_capability": device.compute_capability,
        "gpu_memory_gib": round(properties["totalGlobalMem"] / 2**30, 1),
        "cuda_runtime": version(runtime.runtimeGetVersion()),
        "cuda_driver": version(runtime.driverGetVersion()),
        "cupy": cupy.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "pgmdsl": pgmdsl.__version__,
    }


def products(W, v0):
    """The step's five matrix products alone, at its shapes."""
    h = v0 @ W

    def step():
        hs = v0 @ W
        vk = hs @ W.T
        vk @ W
        v0.T @ h
        vk.T @ hs

    return step


def timed(programs: dict, synchronize, repeats: int, steps: int, warmup: int) -> dict:
    """Per-step seconds of each program: `repeats` samples of `steps` steps each, interleaved."""
    samples = {name: [] for name in programs}
    for step in programs.values():
        for _ in range(warmup):
            step()
    synchronize()
    for _ in range(repeats):
        for name, step in programs.items():
            synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                step()
            synchronize()
            samples[name].append((time.perf_counter() - start) / steps)
    return {name: {"median": statistics.median(s), "min": min(s), "max": max(s), "samples": s}
            for name, s in samples.items()}


def agreement(cupy, compiled, v0, host, lr, seed) -> dict:
    """One step of each GPU program from the same parameters and random stream: how far apart the updates are."""
    start = {k: v.copy() for k, v in compiled.params.items()}
    generated(compiled, v0, lr, "cd", cupy.random.default_rng(seed), host)()
    params = compiled.params
    compiled.params = {k: v.copy() for k, v in start.items()}  # leave the model as it was
    W, a, b = (start[k].copy() for k in ("W", "a", "b"))
    hand_written(W, a, b, v0, lr, cupy.random.default_rng(seed), v0.dtype, xp=cupy)()
    differences = {k: float(cupy.abs(params[k] - mine).max()) for k, mine in (("W", W), ("a", a), ("b", b))}
    updates = {k: float(cupy.abs(params[k] - start[k]).max()) for k in ("W", "a", "b")}
    return {"max_abs_difference": differences, "max_abs_update": updates}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--visible", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7, help="samples per program (at least 5)")
    parser.add_argument("--steps", type=int, default=50, help="CD-1 steps per sample")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per program first")
    parser.add_argument("--no-cpu", action="store_true", help="skip the NumPy backend on the CPU")
    parser.add_argument("--json", type=Path, help="write the figures and machine details here")
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")

    cupy, reason = gpu_or_reason()
    if cupy is None:
        print(f"bench/gpu.py: nothing measured: {reason}")
        return 0

    dtype = np.dtype(args.dtype)
    lr = 0.01
    host = (np.random.default_rng(0).random((args.batch, args.visible)) < 0.13).astype(dtype)
    v0 = cupy.asarray(host)
    model = pgmdsl.load("rbm", nv=args.visible, nh=args.hidden)
    start = time.perf_counter()
    compiled = model.compile(backend="cupy", dtype=args.dtype)
    compile_seconds = time.perf_counter() - start
    details = gpu_details(cupy)
    check = agreement(cupy, compiled, v0, host, lr, seed=3)

    W = compiled.params["W"].copy()
    a, b = compiled.params["a"].copy(), compiled.params["b"].copy()
    programs = {
        "generated (cupy backend)": generated(compiled, v0, lr, "cd", cupy.random.default_rng(1), host),
        "hand-written cupy": hand_written(W, a, b, v0, lr, cupy.random.default_rng(1), v0.dtype, xp=cupy),
        "matrix products alone": products(W.copy(), v0),
    }
    synchronize = cupy.cuda.Device().synchronize
    gpu_times = timed(programs, synchronize, args.repeats, args.steps, args.warmup)

    cpu_times = {}
    if not args.no_cpu:
        cpu = model.compile(backend="numpy", dtype=args.dtype)
        step = generated(cpu, host, lr, "cd")
        cpu_times = timed({"generated (numpy backend, CPU)": step}, lambda: None, args.repeats, args.steps, args.warmup)

    print(machine())
    print("  ".join(f"{k}: {v}" for k, v in details.items()))
    print(f"RBM {args.visible}x{args.hidden}, batch {args.batch}, {args.dtype}: v {tuple(v0.shape)}, "
          f"W {tuple(W.shape)}, a {tuple(a.shape)}, b {tuple(b.shape)}")
    print(f"median of {args.repeats} samples x {args.steps} CD-1 steps, after {args.warmup} warm-up steps each; "
          f"synchronized before and after every sample; module compiled in {compile_seconds:.2f} s")
    print("agreement after one step from the same parameters and random stream: " + ", ".join(
        f"max |d{k}| {check['max_abs_difference'][k]:.2e} (update {check['max_abs_update'][k]:.2e})" for k in ("W", "a", "b")))
    for name, t in {**gpu_times, **cpu_times}.items():
        print(f"  {name:32s} {t['median'] * 1e3:8.3f} ms/step   (min {t['min'] * 1e3:.3f}, max {t['max'] * 1e3:.3f})")
    generated_ms = gpu_times["generated (cupy backend)"]["median"]
    hand_ms = gpu_times["hand-written cupy"]["median"]
    print(f"  generated / hand-written on the GPU = {generated_ms / hand_ms:.3f}")
    if cpu_times:
        cpu_ms = cpu_times["generated (numpy backend, CPU)"]["median"]
        print(f"  numpy backend (CPU) / cupy backend (GPU) = {cpu_ms / generated_ms:.1f}")

    if args.json:
        args.json.write_text(json.dumps({
            "shape": {"visible": args.visible, "hidden": args.hidden, "batch": args.batch}, "dtype": args.dtype,
            "repeats": args.repeats, "steps": args.steps, "warmup": args.warmup, "machine": machine(),
            **details, "agreement": check, "seconds_per_step": {**gpu_times, **cpu_times},
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
