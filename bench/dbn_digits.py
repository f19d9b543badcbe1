"""A deep belief network on digits: greedy RBM pretraining, then backpropagation fine-tuning, against baselines.

scikit-learn's digits, X/16, split test_size=0.2 random_state=0 (1,437 /
360 rows). For each seed, in the same run:

- pgmdsl.sklearn.DBNClassifier((100, 100)) with its defaults: two binary
  RBMs pretrained greedily (CD-1), unrolled into a sigmoid network with a
  softmax output and fine-tuned by SGD with momentum;
- the same DBNClassifier with finetune=False (softmax on the fixed
  pretrained features) and with pretrain_epochs=0 (the same network and
  optimiser from the RBMs' initial weights, normal(0, 0.01));
- scikit-learn's MLPClassifier((100, 100), activation="logistic"): with
  the fine-tuning's optimiser and settings (SGD, lr 0.1, momentum 0.9
  without Nesterov, batch 10, the same epochs, alpha = weight decay x batch
  size, which is the same L2 step since scikit-learn divides alpha by the
  batch size), with the alpha its validation split preferred (1e-4, of 0,
  1e-4, 3e-4, 1e-3 and 1e-2), and with its defaults (Adam, 200 epochs);
- LogisticRegression on the pixels and the BernoulliRBM + LogisticRegression
  Pipeline, both with scikit-learn's digits example settings
  (plot_rbm_logistic_classification: BernoulliRBM(n_components=100,
  learning_rate=0.06, n_iter=10), C=6000 after it and C=100 on the pixels;
  newton-cg with tol 1e-4, as bench/sklearn_example.py).

Reported: test accuracy mean +- std over the seeds (and per seed), mean fit
seconds, the load average before and after.

    python bench/dbn_digits.py [--seeds 0 1 2 3 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM, MLPClassifier
from sklearn.pipeline import Pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from pgmdsl.sklearn import DBNClassifier  # noqa: E402

DEFAULTS = DBNClassifier().get_params()
SAME_SGD = dict(solver="sgd", learning_rate="constant", learning_rate_init=DEFAULTS["learning_rate"],
                momentum=DEFAULTS["momentum"], nesterovs_momentum=False, batch_size=DEFAULTS["batch_size"],
                max_iter=DEFAULTS["epochs"], alpha=DEFAULTS["weight_decay"] * DEFAULTS["batch_size"],
                n_iter_no_change=10**9, tol=0.0, early_stopping=False)


def mlp(seed: int, **changes) -> MLPClassifier:
    return MLPClassifier(hidden_layer_sizes=(100, 100), activation="logistic", random_state=seed, **changes)


def logistic(C: float) -> LogisticRegression:
    return LogisticRegression(solver="newton-cg", C=C, tol=1e-4, max_iter=10000)


METHODS = {
    "DBN pretrained + fine-tuned": lambda seed: DBNClassifier(random_state=seed),
    "DBN pretrained, softmax only": lambda seed: DBNClassifier(finetune=False, random_state=seed),
    "same network, no pretraining": lambda seed: DBNClassifier(pretrain_epochs=0, random_state=seed),
    "MLP sigmoid, fine-tuning's SGD": lambda seed: mlp(seed, **SAME_SGD),
    "MLP sigmoid, SGD, alpha 1e-4": lambda seed: mlp(seed, **{**SAME_SGD, "alpha": 1e-4}),
    "MLP sigmoid, Adam (defaults)": lambda seed: mlp(seed),
    "LogisticRegression (C=100)": lambda seed: logistic(100),
    "BernoulliRBM + logistic (C=6000)": lambda seed: Pipeline([
        ("rbm", BernoulliRBM(n_components=100, learning_rate=0.06, n_iter=10, random_state=seed)),
        ("logistic", logistic(6000))]),
}


def data():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16, y, test_size=0.2, random_state=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)  # Adam's 200 epochs and SGD's fixed epochs end unconverged
    print(machine())
    print("load average before: " + ", ".join(f"{value:.2f}" for value in os.getloadavg()))
    X_train, X_test, y_train, y_test = data()
    print(f"digits X/16: {len(X_train)} train / {len(X_test)} test rows; seeds {args.seeds}")
    print(f"DBNClassifier defaults: {DEFAULTS}")
    results = {}
    for name, make in METHODS.items():
        scores, seconds = [], []
        for seed in args.seeds:
            model = make(seed)
            start = time.perf_counter()
            model.fit(X_train, y_train)
            seconds.append(time.perf_counter() - start)
            scores.append(float(model.score(X_test, y_test)))
        results[name] = {"accuracy": scores, "seconds": seconds}
        print(f"  {name:<34} {np.mean(scores):.4f} +- {np.std(scores):.4f}  "
              f"[{' '.join(f'{s:.4f}' for s in scores)}]  {np.mean(seconds):6.2f} s", flush=True)
    print("load average after: " + ", ".join(f"{value:.2f}" for value in os.getloadavg()))
    dbn = np.mean(results["DBN pretrained + fine-tuned"]["accuracy"])
    best, name = max((np.mean(result["accuracy"]), name) for name, result in results.items() if name.startswith("MLP"))
    print(f"target (fine-tuned DBN >= the best same-shaped MLP from random init): "
          f"{'met' if dbn >= best else 'NOT met'} ({dbn:.4f} vs {best:.4f}, {name})")
    if args.json:
        args.json.write_text(json.dumps({"seeds": args.seeds, "defaults": DEFAULTS, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
