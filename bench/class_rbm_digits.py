"""The classification RBM on binarised digits: generative, discriminative and hybrid training.

scikit-learn's digits, X/16 > 0.5, split test_size=0.2 random_state=0
(1,437 / 360 rows), labels one-hot in class_rbm's y (nx=64, ny=10, nh=100,
float64). Each objective trains for --epochs at batch 10 with settings fixed
in advance (nothing tuned on the test rows): generative PCD-1 at lr 0.05;
discriminative (the exact gradient of log p(y | x)) at lr 0.5; hybrid at
lr 0.5 with generative weight 0.01 (Larochelle and Bengio 2008). Reported on
the test rows: the accuracy of the most probable label and the mean
log p(y | x), both exact (every label enumerated, the hidden layer summed
out); seeds --seeds. For context, scikit-learn's LogisticRegression on the
same binary pixels.

    python bench/class_rbm_digits.py [--epochs 30] [--seeds 0 1 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

import pgmdsl  # noqa: E402
from pgmdsl.evaluate import label_metrics  # noqa: E402

OBJECTIVES = {
    "generative (PCD-1)": dict(objective="generative", method="pcd", lr=0.05),
    "discriminative": dict(objective="discriminative", lr=0.5),
    "hybrid (weight 0.01)": dict(objective="hybrid", method="pcd", lr=0.5, generative_weight=0.01),
}


def data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split((X / 16 > 0.5).astype(np.float64), y, test_size=0.2, random_state=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(machine())
    X_train, X_test, y_train, y_test = data()
    train = {"x": X_train, "y": np.eye(10)[y_train]}
    test = {"x": X_test, "y": np.eye(10)[y_test]}
    print(f"binarised digits: {len(X_train)} train / {len(X_test)} test rows; class_rbm(nx=64, ny=10, nh=100), "
          f"batch 10, {args.epochs} epochs, float64; test accuracy and mean log p(y | x), exact")
    results = {}
    for name, settings in OBJECTIVES.items():
        rows = []
        for seed in args.seeds:
            c = pgmdsl.load("class_rbm", nx=64, ny=10, nh=100).compile(dtype="float64", seed=seed)
            start = time.perf_counter()
            c.fit(train, epochs=args.epochs, batch_size=10, seed=seed, verbose=0, labels="y", **settings)
            seconds = time.perf_counter() - start
            rows.append({"seed": seed, **label_metrics(c, test, "y"), "seconds": seconds})
        results[name] = rows
        accuracy = [r["accuracy"] for r in rows]
        likelihood = [r["log_likelihood"] for r in rows]
        print(f"  {name:<22} accuracy {np.mean(accuracy):.4f} ({min(accuracy):.4f}-{max(accuracy):.4f})  "
              f"log p(y|x) {np.mean(likelihood):8.4f}  fit {np.mean([r['seconds'] for r in rows]):.1f} s", flush=True)
    from sklearn.linear_model import LogisticRegression

    logistic = LogisticRegression(max_iter=2000).fit(X_train, y_train)
    probabilities = logistic.predict_proba(X_test)
    baseline = {"accuracy": float(logistic.score(X_test, y_test)),
                "log_likelihood": float(np.mean(np.log(probabilities[np.arange(len(y_test)), y_test])))}
    print(f"  {'logistic regression':<22} accuracy {baseline['accuracy']:.4f}                  "
          f"log p(y|x) {baseline['log_likelihood']:8.4f}  (scikit-learn, C=1, on the same pixels)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results, "logistic": baseline}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
