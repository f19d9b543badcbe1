"""A convolutional RBM's sparsity target on digits: the held-out log-likelihood per target.

Why: Lee et al. (2009) train convolutional RBMs with a sparsity penalty on
the detector units (Lee, Ekanadham and Ng 2008); this measures which target
the `convolutional` recipe (runtime.recipes) should default to. conv_rbm
with 24 filters 3x3 and 2x2 probabilistic max pooling on binarised 8x8
digits (digits-binary, 180 rows held out by a seeded permutation), CD-1,
batch 10, lr 0.05, 20 epochs, sparsity cost 1; log Z by AIS, 100 runs x
5,000 distributions, on the training rows; the mean log p(v) of the held-out
rows, and the detectors' mean activation there.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 python bench/conv_sparsity.py [TARGET ...]
(TARGET a number or "none"; default none 0.1 0.05 0.02; about 1 min each)
"""

import sys
import time

import numpy as np

import pgmdsl
from pgmdsl.evaluate import ais, log_likelihood
from pgmdsl.runtime.datasets import load_data


def main(targets: list[str]) -> None:
    rows = load_data("digits-binary").reshape(-1, 1, 8, 8)
    order = np.random.default_rng(0).permutation(len(rows))
    train, held = rows[order[180:]], rows[order[:180]]
    for text in targets:
        target = None if text == "none" else float(text)
        c = pgmdsl.load("conv_rbm", NV=8, K=24, NW=3).compile()
        started = time.perf_counter()
        c.fit(train, method="cd", epochs=20, batch_size=10, lr=0.05, verbose=0, sparsity_target=target,
              sparsity_cost=0.0 if target is None else 1.0)
        seconds = time.perf_counter() - started
        z = ais(c, train, runs=100, schedule=np.linspace(0, 1, 5001), seed=0, progress=False)
        score = float(np.mean(log_likelihood(c, held, z.log_z)))
        active = float(c.transform(held)["h"].mean())
        print(f"target {text}: held-out log p(v) {score:.2f} (log Z {z.log_z:.2f} [{z.log_z_low:.2f}, "
              f"{z.log_z_high:.2f}]), detectors' mean {active:.3f}, training {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["none", "0.1", "0.05", "0.02"])
