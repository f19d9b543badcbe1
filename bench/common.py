"""Shared helpers for the benchmarks: machine details and robust timing."""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np


def machine() -> str:
    """One line per fact: platform, CPU, Python, numpy and its BLAS threads."""
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)" for i in threadpool_info())
    except ImportError:
        blas = "threadpoolctl not installed"
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return "\n".join([
        f"platform: {platform.platform()}",
        f"cpu: {cpu}, {os.cpu_count()} logical cores",
        f"python {platform.python_version()}, numpy {np.__version__}",
        f"blas: {blas}",
    ])


def median_time(step, repeats: int = 7, inner: int = 50) -> float:
    """Median over `repeats` of the mean time of `inner` calls, in seconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            step()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def interleaved(steps: dict, repeats: int = 7, inner: int = 50) -> dict[str, float]:
    """Median step times of several programs timed in turn, so drift hits them alike."""
    samples = {name: [] for name in steps}
    for step in steps.values():
        for _ in range(5):
            step()
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(inner):
                step()
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: statistics.median(values) for name, values in samples.items()}
