"""BLAS threads: one for training whose per-update products are small, all of them otherwise.

Why: a minibatch update multiplies a few rows by the weights (10 x 500 x 500
in a DBN's level), products too small for threads to pay on a laptop's few
cores, yet large enough that OpenBLAS wakes its worker threads, which then
busy-wait. On a machine whose cores are busy (another job, a notebook, this
project's own test suite), that waiting takes the CPU from the thread doing
the work: one epoch of a 500 x 500 RBM, batch 10, took 18.8 s with the
default threads against 1.0 s with one, on 2 cores at load 6 (500 x 2000:
36 s against 3.6 s at load 8). With idle cores one thread costs at most the
cores' count at these sizes, and often nothing. Products of more than
SMALL_PRODUCTS multiply-adds per update (a batch of 100 chains and rows
through 784 x 500 is 78M) keep every thread. threadpoolctl does the limiting, and the limit
lasts only while the training runs.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache

SMALL_PRODUCTS = 1 << 26  # multiply-adds per update below which training runs BLAS on one thread


def blas_threads(multiply_adds: int):
    """A context manager: one BLAS thread while it lasts if `multiply_adds` (per update) is at most
    SMALL_PRODUCTS, else nothing changes."""
    if multiply_adds > SMALL_PRODUCTS:
        return nullcontext()
    controller = _threadpools()
    return nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


def update_products(compiled, rows: int) -> int:
    """Multiply-adds of one update's products, roughly: `rows` times the size of every weight (2+ axes)."""
    return rows * sum(int(value.size) for name, value in compiled.params.items() if value.ndim >= 2)


@lru_cache(maxsize=1)
def _threadpools():
    """threadpoolctl's view of the loaded BLAS libraries, found once (a scan costs milliseconds)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
