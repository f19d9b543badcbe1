"""Distributed AIS and data-parallel training on a LocalCluster of 2 worker processes, against serial.

- AIS: an RBM 784 x 500 (bench/ais_time.py's random weights of realistic
  scale), 100 runs, --distributions intermediate distributions: serial in
  this process, then ais(..., client=) on 2 single-threaded workers (each
  half of the runs); the log weights must be identical.
- Data-parallel fit: an RBM 784 x NH trained by CD-1 on random binary rows
  for each --batches size: serial fit (the generic update, fused=False, one
  BLAS thread: what each worker has) against fit(client=) with the rows
  sharded over the 2 workers. Per update: the difference between 3 epochs
  and 1, so the once-a-fit setup (compiling on the workers, sending the
  shards) is reported apart.

Serial runs use one BLAS thread so the comparison is of processes, as on a
cluster of single-core workers; the machine has 2 cores.

    python bench/dask_scaling.py [--distributions 300] [--hidden 500] [--batches 20 200 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

import pgmdsl  # noqa: E402
from pgmdsl.evaluate import ais  # noqa: E402


def ais_model(rng):
    data = (rng.random((1000, 784)) < rng.beta(0.3, 2.0, 784)).astype(float)
    c = pgmdsl.load("rbm", nv=784, nh=500).compile(dtype="float32")
    c.params["W"][...] = rng.normal(0, 0.05, (784, 500))
    c.params["b"][...] = rng.normal(-1, 0.5, 500)
    p = np.clip(data.mean(0), 0.01, 0.99)
    c.params["a"][...] = np.log(p / (1 - p))
    return c, data


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def main() -> None:
    from dask.distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distributions", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--batches", type=int, nargs="+", default=[20, 200, 1000])
    parser.add_argument("--rows", type=int, default=4000)
    args = parser.parse_args()
    print(machine())
    rng = np.random.default_rng(0)
    schedule = np.linspace(0, 1, args.distributions + 1)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    try:
        c, data = ais_model(rng)
        with threadpool_limits(1):
            serial, seconds = timed(lambda: ais(c, data, runs=100, schedule=schedule, progress=False))
        _, threaded = timed(lambda: ais(c, data, runs=100, schedule=schedule, progress=False))  # both BLAS threads
        spread, spread_seconds = timed(lambda: ais(c, data, runs=100, schedule=schedule, progress=False,
                                                   client=client))
        apart = np.max(np.abs(serial.log_weights - spread.log_weights))
        print(f"AIS RBM 784x500 float32, 100 runs x {args.distributions} distributions: serial (1 thread) "
              f"{seconds:.1f} s (2 BLAS threads {threaded:.1f} s), 2 workers {spread_seconds:.1f} s "
              f"({seconds / spread_seconds:.2f}x, {threaded / spread_seconds:.2f}x the 2-thread run, setup included); "
              f"log Z {serial.log_z:.6f} serial, {spread.log_z:.6f} on 2 workers; largest |log weight difference| "
              f"{apart:.2g}", flush=True)
        rows = (rng.random((args.rows, 784)) < rng.beta(0.3, 2.0, 784)).astype(np.float32)
        for batch in args.batches:
            updates = args.rows // batch
            measured = {}
            for name, arguments in (("serial", {"fused": False}), ("2 workers", {"client": client})):
                times = []
                for epochs in (1, 3):  # the difference over 2 epochs: the per-update cost without the setup
                    model = pgmdsl.load("rbm", nv=784, nh=args.hidden).compile(dtype="float32", seed=0)
                    with threadpool_limits(1):
                        times.append(timed(lambda: model.fit(rows, method="cd", epochs=epochs, batch_size=batch,
                                                             lr=0.01, verbose=0, **arguments))[1])
                measured[name] = ((times[1] - times[0]) / (2 * updates), times[0] - (times[1] - times[0]) / 2)
            (serial, _), (spread, setup) = measured["serial"], measured["2 workers"]
            print(f"CD-1 RBM 784x{args.hidden} float32, {args.rows} rows, batch {batch}: serial {serial * 1e3:.1f} "
                  f"ms/update, 2 workers {spread * 1e3:.1f} ms/update ({serial / spread:.2f}x; the cluster's setup, "
                  f"once a fit: {setup:.1f} s)", flush=True)
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
