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

- The ceiling, measured in the same run: two plain processes (no Dask) each
  computing a worker's share of an update (ShardTrainer.statistics on
  batch / 2 rows) at the same time, nothing sent between them: what two
  workers could reach on this machine if moving the parameters and the
  statistics cost nothing. On a 2-vCPU virtual machine two busy processes
  slow each other (shared caches and memory bandwidth), so the ceiling is
  below 2x.

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
from pgmdsl.distributed import local_cluster  # noqa: E402
from pgmdsl.evaluate import ais  # noqa: E402


def ais_model(rng):
    data = (rng.random((1000, 784)) < rng.beta(0.3, 2.0, 784)).astype(float)
    c = pgmdsl.load("rbm", nv=784, nh=500).compile(dtype="float32")
    c.params["W"][...] = rng.normal(0, 0.05, (784, 500))
    c.params["b"][...] = rng.normal(-1, 0.5, 500)
    p = np.clip(data.mean(0), 0.01, 0.99)
    c.params["a"][...] = np.log(p / (1 - p))
    return c, data


def _share_time(rows: np.ndarray, hidden: int, share: int, start_at: float, updates: int = 5) -> float:
    """In a fresh process: the median time of one worker's share of an update (no Dask), started at start_at."""
    from pgmdsl.distributed import ShardTrainer, model_bytes
    from pgmdsl.runtime.train import as_data

    with threadpool_limits(1):
        model = pgmdsl.load("rbm", nv=784, nh=hidden).compile(dtype="float32", seed=0)
        trainer = ShardTrainer(model_bytes(model), as_data(model, rows), 0, 0, share, share, {"method": "cd", "k": 1})
        trainer.shuffle()
        params = {name: np.asarray(value) for name, value in model.params.items()}
        time.sleep(max(0.0, start_at - time.time()))  # both processes busy at once
        times = []
        for update in range(updates):
            started = time.perf_counter()
            trainer.statistics(params, update % (len(rows) // share), 1e-3, 1e-3)
            times.append(time.perf_counter() - started)
    return float(np.median(times))


def ceiling(rows: np.ndarray, hidden: int, batch: int) -> tuple[float, float]:
    """(one process alone, two processes at once): the median time of a worker's share (batch / 2 rows)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        alone = pool.submit(_share_time, rows, hidden, batch // 2, time.time() + 5).result()
        both = [pool.submit(_share_time, rows, hidden, batch // 2, time.time() + 5) for _ in range(2)]
        return alone, max(future.result() for future in both)


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
    parser.add_argument("--nanny-environment", action="store_true",
                        help="start the workers with Dask's default environment (MALLOC_TRIM_THRESHOLD_ set), not "
                             "pgmdsl.distributed.local_cluster's")
    args = parser.parse_args()
    print(machine())
    rng = np.random.default_rng(0)
    schedule = np.linspace(0, 1, args.distributions + 1)
    if args.nanny_environment:  # Dask's own default: MALLOC_TRIM_THRESHOLD_=65536 in every worker
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    else:
        cluster = local_cluster(2, dashboard_address=":0")
    client = Client(cluster)
    try:
        c, data = ais_model(rng)
        with threadpool_limits(1):
            serial, seconds = timed(lambda: ais(c, data, runs=100, schedule=schedule, progress=False))
        # ais's default: the chains in one thread per BLAS thread
        _, threaded = timed(lambda: ais(c, data, runs=100, schedule=schedule, progress=False))
        spread, spread_seconds = timed(lambda: ais(c, data, runs=100, schedule=schedule, progress=False,
                                                   client=client))
        apart = np.max(np.abs(serial.log_weights - spread.log_weights))
        print(f"AIS RBM 784x500 float32, 100 runs x {args.distributions} distributions: serial (1 thread) "
              f"{seconds:.1f} s (default threads {threaded:.1f} s), 2 workers {spread_seconds:.1f} s "
              f"({seconds / spread_seconds:.2f}x, {threaded / spread_seconds:.2f}x the default run, setup included); "
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
            alone, both = ceiling(rows, args.hidden, batch)
            print(f"CD-1 RBM 784x{args.hidden} float32, {args.rows} rows, batch {batch}: serial {serial * 1e3:.1f} "
                  f"ms/update, 2 workers {spread * 1e3:.1f} ms/update ({serial / spread:.2f}x; the cluster's setup, "
                  f"once a fit: {setup:.1f} s); ceiling: a share of {batch // 2} rows takes {alone * 1e3:.1f} ms "
                  f"alone, {both * 1e3:.1f} ms with the other share beside it ({serial / both:.2f}x serial)",
                  flush=True)
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
