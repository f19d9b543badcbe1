"""The variational lower bound of a DBN on binarised digits, greedy against greedy + up-down fine-tuning.

Why: `pgmdsl eval` reports a DBN through the bound of Salakhutdinov and
Murray (2008); this shows what the two stack recipes (greedy, updown) give
on held-out rows, beside the RBM figures of bench/dbm_pretraining.py (RBM
64-100: -21.48 test). Greedy: PCD-1, lr 0.05, batch 10, 20 epochs a level;
up-down: 100 epochs of fine_tune's defaults (lr 0.01, batch 100, k 3/6/10).
log Z of the top level by AIS (100 runs x 3,000 distributions; the bound's
100 samples a row). digits binarised as `digits-binary`, test_size=0.2,
random_state=0.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/dbn_bound.py
"""

import time

import numpy as np
from sklearn.model_selection import train_test_split

import pgmdsl
from pgmdsl.evaluate.report import evaluate_stack
from pgmdsl.runtime.datasets import load_data


def bound(stack, train, test) -> float:
    result = evaluate_stack(stack, {"test": test}, ais_runs=100, distributions=3000, reference=train)
    return result["test"]["log_likelihood_lower_bound"]


def main() -> None:
    rows = load_data("digits-binary").astype(np.float64)
    train, test = train_test_split(rows, test_size=0.2, random_state=0)
    print("| DBN | greedy: test bound | seconds | + up-down: test bound | seconds |")
    print("|---|---:|---:|---:|---:|")
    for sizes in (dict(n1=32, n2=32, n3=64), dict(n1=100, n2=100, n3=200)):
        stack = pgmdsl.load("dbn", nv=64, **sizes).compile(dtype="float64")
        started = time.perf_counter()
        stack.fit(train, epochs=20, verbose=0, method="pcd", lr=0.05, batch_size=10)
        greedy, greedy_s = bound(stack, train, test), time.perf_counter() - started
        started = time.perf_counter()
        stack.fine_tune(train, epochs=100)
        tuned, tuned_s = bound(stack, train, test), time.perf_counter() - started
        shape = "-".join(str(v) for v in (64, *sizes.values()))
        print(f"| {shape} | {greedy:.2f} | {greedy_s:.0f} | {tuned:.2f} | {tuned_s:.0f} |", flush=True)


if __name__ == "__main__":
    main()
