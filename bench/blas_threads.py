"""One epoch of PCD-1 training with one BLAS thread (runtime.threads' policy) against all of them.

Why: fit runs on one BLAS thread when an update's products are below
runtime.threads.SMALL_PRODUCTS multiply-adds; this measures what that costs
on an idle machine (the gain on a busy one is in runtime/threads.py and
bench/README.md). RBMs on 2,000 random binary rows, float32, each setting
twice, alternated.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/blas_threads.py
"""
import time, numpy as np, pgmdsl
from pgmdsl.runtime import threads
X = (np.random.default_rng(0).random((2000, 784)) < 0.3).astype(np.float32)
for shape, batch in (((784, 500), 10), ((784, 500), 100), ((500, 2000), 10)):
    res = {}
    for label, limit in (("one thread", 1 << 26), ("all threads", 0)) * 2:
        threads.SMALL_PRODUCTS = limit
        c = pgmdsl.load("rbm", nv=shape[0], nh=shape[1]).compile(dtype="float32")
        rows = X[:, :shape[0]]
        t = time.perf_counter(); c.fit(rows, method="pcd", epochs=1, batch_size=batch, lr=0.05, verbose=0)
        res.setdefault(label, []).append(time.perf_counter() - t)
    print(shape, "batch", batch, {k: [round(v, 2) for v in vals] for k, vals in res.items()}, flush=True)
