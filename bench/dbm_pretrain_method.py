"""DBM pretraining by CD-1 or PCD-1: the test bound after the recipe's joint training, per size.

Why: on digits (1,437 training rows, 15 updates an epoch) a wide DBM
pretrained by CD-1, as the papers' code does on MNIST, keeps a spurious mode
its top RBM never explored, and the joint phase (lr 0.001) cannot remove it
in its updates; this measures which pretraining sampler the recipe should
default to. Joint training: runtime.recipes.dbm.JOINT with `epochs` given;
log Z by AIS, 100 runs x 3,000 distributions; the mean-field bound on the
test rows (digits-binary, test_size=0.2, random_state=0), seed 0.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/dbm_pretrain_method.py N1 N2 EPOCHS cd pcd
"""

import sys
import time

import numpy as np
from sklearn.model_selection import train_test_split

import pgmdsl
from pgmdsl.evaluate import ais, lower_bound
from pgmdsl.runtime.datasets import load_data
from pgmdsl.runtime.recipes import dbm


def main(n1: int, n2: int, epochs: int, methods: list[str]) -> None:
    rows = load_data("digits-binary").astype(np.float64)
    train, test = train_test_split(rows, test_size=0.2, random_state=0)
    for method in methods:
        c = pgmdsl.load("dbm", nv=64, n1=n1, n2=n2).compile(dtype="float64", seed=0)
        started = time.perf_counter()
        dbm.train(c, train, pretraining={"method": method}, seed=0, epochs=epochs, verbose=0)
        z = ais(c, train, runs=100, schedule=np.linspace(0, 1, 3001), seed=0, progress=False)
        bound = float(lower_bound(c, test, z.log_z).mean())
        print(f"64-{n1}-{n2}, {method} pretraining, {epochs} joint epochs: test bound {bound:.2f}, log Z "
              f"{z.log_z:.2f} [{z.log_z_low:.2f}, {z.log_z_high:.2f}], {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
