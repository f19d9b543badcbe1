"""Compile time of every standard-library model at its default sizes: cold and cached.

cold: parse, derive with sympy, emit and load the module with an empty
cache (a fresh temporary cache directory), in a process that has compiled
before; first: the same in a fresh process (after `import pgmdsl`), so it
includes importing sympy and building the printers; cached: the call again,
which reads the module from the disk cache and loads it. A stack (dbn)
compiles each of its models. Medians of --repeats runs.

    python bench/compile_time.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
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


FRESH = """
import os, sys, tempfile, time
import pgmdsl
os.environ["PGMDSL_CACHE_DIR"] = tempfile.mkdtemp()
model = pgmdsl.load(sys.argv[1])
start = time.perf_counter()
for part in model.stack or (model,):
    part.compile()
print(time.perf_counter() - start)
"""


def first_compile(name: str) -> float:
    """Seconds for the first compile in a fresh interpreter (cache empty)."""
    out = subprocess.run([sys.executable, "-c", FRESH, name], capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    print(f"{'model':10s} {'first ms':>9s} {'cold ms':>9s} {'cached ms':>10s}   "
          f"(median of {args.repeats}; targets: cold < 1000, cached < 50)")
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
        first = statistics.median(first_compile(name) for _ in range(args.repeats))
        print(f"{name:10s} {first * 1e3:9.1f} {statistics.median(cold) * 1e3:9.1f} {statistics.median(cached) * 1e3:10.1f}")


if __name__ == "__main__":
    main()
