"""Compile time of every standard-library model at its default sizes: cold and cached.

cold: parse, derive with sympy, emit and load the module with an empty
cache (a fresh temporary cache directory); cached: the same call again,
which reads the module from the disk cache and loads it. A stack (dbn)
compiles each of its models. Medians of --repeats runs.

    python bench/compile_time.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

import pgmdsl  # noqa: E402
from pgmdsl import resources  # noqa: E402


def compile_all(model) -> None:
    for part in model.stack or (model,):
        part.compile()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    print(f"{'model':10s} {'cold ms':>9s} {'cached ms':>10s}   (median of {args.repeats}; targets: cold < 1000, cached < 50)")
    for name in resources.standard_models():
        model = pgmdsl.load(name)
        cold, cached = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as directory:
                os.environ["PGMDSL_CACHE_DIR"] = directory
                start = time.perf_counter()
                compile_all(model)
                cold.append(time.perf_counter() - start)
                start = time.perf_counter()
                compile_all(model)
                cached.append(time.perf_counter() - start)
        print(f"{name:10s} {statistics.median(cold) * 1e3:9.1f} {statistics.median(cached) * 1e3:10.1f}")


if __name__ == "__main__":
    main()
