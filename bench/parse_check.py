"""Parse + check time of every standard-library model.

For each name in pgmdsl.resources.standard_models() this measures
`pgmdsl.load(name)` (read the .dgm file and its imports, parse, build and
check the IR, factor graph and Gibbs schedule):

* cold: the first load in a fresh Python process, which includes building the
  Lark LALR parser from the grammar.  Each sample is a new subprocess; the
  interpreter start-up and `import pgmdsl` are timed separately and are not
  part of the figure.
* warm: the same load repeated in one process once the parser is cached;
  median of --repeats runs (at least 20).

Usage (from the repository root, with pgmdsl importable or not):

    python bench/parse_check.py                  # table on stdout
    python bench/parse_check.py --json out.json  # also the raw samples
    python bench/parse_check.py --models rbm dbm --repeats 50 --cold-repeats 9

The target is a warm median under 50 ms per model (--target-ms); with --strict
the script exits with status 1 when a model misses it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    import pgmdsl
except ImportError:  # a plain checkout: use the package beside bench/
    sys.path.insert(0, str(ROOT))
    import pgmdsl
from pgmdsl import resources

# The package directory's parent, handed to the cold subprocesses so that they
# import the very same pgmdsl as this process.
PACKAGE_PARENT = str(Path(pgmdsl.__file__).resolve().parent.parent)

COLD_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import pgmdsl
t1 = time.perf_counter()
# Build the cached Lark parser on its own first, to split the cold figure into
# parser construction and the load proper (skipped if the private hook moves).
try:
    from pgmdsl.frontend.parser import _parser
except ImportError:
    _parser = None
if _parser is not None:
    _parser()
t2 = time.perf_counter()
pgmdsl.load(sys.argv[1])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "parser_s": (t2 - t1) if _parser else None, "load_s": t3 - t1}))
"""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "pgmdsl": f"{pgmdsl.__version__} ({Path(pgmdsl.__file__).resolve().parent})",
        "lark": _version("lark"),
        "numpy": _version("numpy"),
        "sympy": _version("sympy"),
        "networkx": _version("networkx"),
    }


def cold(name: str, samples: int) -> list[dict]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    results = []
    for _ in range(samples):
        done = subprocess.run([sys.executable, "-c", COLD_PROBE, name], env=env, cwd=ROOT,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"cold load of {name} failed:\n{done.stderr}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def warm(name: str, repeats: int) -> list[float]:
    pgmdsl.load(name)  # untimed: builds the cached parser on the first model, warms imports and caches for this one
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        pgmdsl.load(name)
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=None, help="default: every standard-library model")
    parser.add_argument("--repeats", type=int, default=30, help="warm repeats per model (at least 20; default 30)")
    parser.add_argument("--cold-repeats", type=int, default=5, help="fresh processes per model (default 5)")
    parser.add_argument("--target-ms", type=float, default=50.0, help="per-model target for the warm median")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a warm median misses the target")
    parser.add_argument("--json", type=Path, help="also write machine details and raw samples here")
    args = parser.parse_args(argv)
    if args.repeats < 20:
        parser.error("--repeats must be at least 20")
    if args.cold_repeats < 1:
        parser.error("--cold-repeats must be at least 1")
    models = args.models or resources.standard_models()

    details = machine()
    print("parse + check (pgmdsl.load) per standard-library model")
    for key, value in details.items():
        print(f"  {key:<12} {value}")
    print(f"  {'samples':<12} cold: {args.cold_repeats} fresh processes per model; warm: median of {args.repeats}")
    print()

    # The cold samples run in their own processes, so this process's caches never reach them.
    rows, raw = [], {}
    for name in models:
        cold_samples = cold(name, args.cold_repeats)
        warm_samples = warm(name, args.repeats)
        row = {
            "model": name,
            "cold_ms": 1e3 * statistics.median(s["load_s"] for s in cold_samples),
            "import_ms": 1e3 * statistics.median(s["import_s"] for s in cold_samples),
            "parser_ms": (1e3 * statistics.median(s["parser_s"] for s in cold_samples)
                          if all(s["parser_s"] is not None for s in cold_samples) else None),
            "warm_ms": 1e3 * statistics.median(warm_samples),
            "warm_min_ms": 1e3 * min(warm_samples),
            "warm_max_ms": 1e3 * max(warm_samples),
        }
        row["ok"] = row["warm_ms"] < args.target_ms
        row["cold_ok"] = row["cold_ms"] < args.target_ms
        rows.append(row)
        raw[name] = {"cold": cold_samples, "warm_s": warm_samples}

    target = format(args.target_ms, "g")
    columns = [("model", 10), ("cold ms", 8), ("of which parser", 15), ("warm ms (median)", 16),
               ("warm min", 8), ("warm max", 8), (f"warm < {target}", 9), (f"cold < {target}", 9)]
    print("| " + " | ".join(f"{title:<{width}}" if i == 0 else f"{title:>{width}}" for i, (title, width) in enumerate(columns)) + " |")
    print("|" + "|".join("-" * (width + 2) if i == 0 else "-" * (width + 1) + ":" for i, (_, width) in enumerate(columns)) + "|")
    for row in rows:
        parser_ms = "n/a" if row["parser_ms"] is None else f"{row['parser_ms']:.1f}"
        cells = [row["model"], f"{row['cold_ms']:.1f}", parser_ms, f"{row['warm_ms']:.2f}", f"{row['warm_min_ms']:.2f}",
                 f"{row['warm_max_ms']:.2f}", "yes" if row["ok"] else "NO", "yes" if row["cold_ok"] else "NO"]
        print("| " + " | ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, (_, w)) in enumerate(zip(cells, columns))) + " |")
    imports = statistics.median(r["import_ms"] for r in rows)
    print()
    print(f"cold = first pgmdsl.load in a fresh process, building the Lark parser included ('of which parser'), "
          f"median of {args.cold_repeats};")
    print(f"`import pgmdsl` itself (not included above): median {imports:.0f} ms.")
    print(f"warm: median over all models {statistics.median(r['warm_ms'] for r in rows):.2f} ms, "
          f"slowest {max(rows, key=lambda r: r['warm_ms'])['model']} {max(r['warm_ms'] for r in rows):.2f} ms.")

    if args.json:
        args.json.write_text(json.dumps({"machine": details, "rows": rows, "raw": raw}, indent=2) + "\n")
        print(f"wrote {args.json}")
    missed = [r["model"] for r in rows if not r["ok"]]
    if missed:
        print(f"warm median over the {args.target_ms:g} ms target: {', '.join(missed)}")
    cold_missed = [r["model"] for r in rows if not r["cold_ok"]]
    if cold_missed:
        print(f"cold first load over {args.target_ms:g} ms (informational): {', '.join(cold_missed)}")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
