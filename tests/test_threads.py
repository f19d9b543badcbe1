"""runtime.threads: training with small per-update products runs BLAS on one thread, and only while it trains."""

import numpy as np
from threadpoolctl import threadpool_info

import pgmdsl
from pgmdsl.runtime.threads import SMALL_PRODUCTS, blas_threads, update_products


def blas() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_small_products_take_one_thread_large_ones_keep_them():
    before = blas()
    assert before, "threadpoolctl finds numpy's BLAS"
    with blas_threads(SMALL_PRODUCTS):
        assert set(blas()) <= {1}
    assert blas() == before
    with blas_threads(SMALL_PRODUCTS + 1):
        assert blas() == before


def test_update_products_counts_rows_times_every_weight():
    c = pgmdsl.load("dbm", nv=5, n1=4, n2=3).compile()
    assert update_products(c, 10) == 10 * (5 * 4 + 4 * 3)


def test_training_a_small_model_runs_on_one_blas_thread_and_restores_them():
    before, seen = blas(), []
    c = pgmdsl.load("rbm", nv=6, nh=4).compile()
    c.fit(np.ones((20, 6)), epochs=2, verbose=0, callbacks=[lambda compiled, row: seen.append(blas())])
    assert all(set(threads) <= {1} for threads in seen) and len(seen) == 2
    assert blas() == before
