"""AIS's and RAISE's chains split into contiguous ranges of whole blocks: over threads here, over Dask tasks
in pgmdsl.distributed.

Each block of chains draws from its own stream (ais.RunStreams), so any split
gives every chain the draws it has in one batch. On the NumPy backend one
batch runs its products on every BLAS thread but its elementwise work (the
draws, the softplus of the free energies, the log weights) on one core; the
threads here each run a share of the chains with one BLAS thread, so all of
the work uses every core (bench/ais_time.py: RBM 784 x 500, float32).
"""

from __future__ import annotations

import operator
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from ..errors import DSLError
from ..ranges import split
from ..runtime.initialize import state_bytes

SHARE_BYTES = 1 << 17  # a thread's share of the state at least this: below, the threads' Python work competes


def blas_threads() -> int:
    """The BLAS threads this process may use now (1 under threadpool_limits(1), or with no BLAS found)."""
    return max([entry["num_threads"] for entry in threadpool_info() if entry["user_api"] == "blas"], default=1)


def chain_threads(compiled, total: int, block: int) -> int:
    """How many threads `total` chains run in: one on a GPU backend, else the BLAS threads, fewer where a
    share of the state would be under SHARE_BYTES, never more than the blocks."""
    if compiled.xp is not np:
        return 1
    row = max(state_bytes(compiled.layers, compiled.dtype), 1)
    threads = min(blas_threads(), -(-total // block))
    while threads > 1 and (total // threads) * row < SHARE_BYTES:
        threads -= 1
    return threads


def _count(threads) -> int:
    """A thread count given by the caller: a whole number >= 1 (NumPy's integers too), never a bool."""
    try:
        number = None if isinstance(threads, bool) else operator.index(threads)
    except TypeError:
        number = None
    if number is None or number < 1:
        raise DSLError(f"threads must be a whole number >= 1 (or None: as many as BLAS uses), got {threads!r}")
    return number


def threaded_weights(estimator, compiled, bases: dict, betas: np.ndarray, seed: int, total: int, rows: dict,
                     block: int, progress: bool = False, threads: int | None = None) -> np.ndarray:
    """The log weights of chains 0..total-1 by `estimator` (ais.forward_weights, reverse.reverse_weights),
    in `threads` threads (None: chain_threads'), each a range of whole blocks; rows: per-chain arrays.
    If one thread fails, or the caller is interrupted, the others are told to stop (the estimators' `stop`)
    and the error is raised once they have."""
    threads = chain_threads(compiled, total, block) if threads is None else _count(threads)
    spans = split(total, threads, block)
    if len(spans) == 1:
        return estimator(compiled, bases, betas, seed, range(total), rows, progress)
    stop = threading.Event()
    with threadpool_limits(1), ThreadPoolExecutor(len(spans)) as pool:
        futures = [pool.submit(estimator, compiled, bases, betas, seed, span,
                               {k: v[span.start:span.stop] for k, v in rows.items()}, progress and not number, stop)
                   for number, span in enumerate(spans)]
        try:
            return np.concatenate([future.result() for future in futures])
        except BaseException:  # an interrupt or one thread's error: the others stop at their next distribution
            stop.set()
            raise
