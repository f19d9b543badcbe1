"""`DBNClassifier`: a deep belief network pretrained greedily, then fine-tuned by backpropagation, as a classifier."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..runtime.threads import blas_threads
from ._common import compile_sized, seeds


class DBNClassifier(ClassifierMixin, BaseEstimator):
    """Binary RBMs stacked and trained greedily on X, unrolled into a sigmoid network with a softmax on top.

    Hinton, Osindero and Teh (2006); Hinton and Salakhutdinov (2006). `fit`
    trains one binary RBM (the standard-library `rbm`) per entry of
    `hidden_layer_sizes`, each on the hidden means of the one below
    (`CompiledStack.fit`, runtime.recipes.greedy), then unrolls their up
    passes into a feed-forward network, adds a softmax output layer and
    trains all of it on the labels by minibatch SGD with momentum on the
    cross-entropy (runtime.recipes.backprop). `finetune=False` trains only
    the output layer, on the fixed pretrained features.

    The defaults were chosen on a validation split of scikit-learn's digits
    scaled to [0, 1] (the training rows only; bench/README.md lists the
    settings tried); features should be scaled to
    [0, 1], as the binary visible units expect, though any real values are
    accepted.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100, 100)
        Hidden units of each level, bottom first.
    pretrain_method : {"cd", "pcd"}, default="cd"
        Each RBM's sampler: CD-1 or PCD-1 (`batch_size` persistent chains).
    pretrain_epochs : int, default=50
        Epochs per RBM; 0 skips pretraining (the network starts from the RBMs' initial parameters: weights
        normal(0, 0.01), biases 0).
    pretrain_lr : float, default=0.05
    batch_size : int, default=10
        Rows per minibatch, in pretraining and in fine-tuning.
    epochs : int, default=50
        Fine-tuning epochs.
    learning_rate : float, default=0.1
        Fine-tuning step size (on the mean gradient of a minibatch).
    momentum : float in [0, 1), default=0.9
        Fine-tuning momentum (pretraining runs without).
    weight_decay : float, default=3e-5
        Fine-tuning L2 penalty on the weight matrices (not the biases).
    finetune : bool, default=True
        False: train only the softmax output layer on the pretrained features.
    random_state : int, RandomState instance or None, default=None
        Seeds the RBMs' initial parameters, pretraining, the output layer's initial weights and the
        minibatch orders.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    network_ : pgmdsl.runtime.recipes.backprop.Network
        The trained network (`network_.weights`, `network_.biases`, the output layer last).
    pretrain_history_ : list of list of dict
        Per level, the RBM's per-epoch metrics (reconstruction error, seconds).
    history_ : list of dict
        Per fine-tuning epoch, the mean training loss.
    n_features_in_ : int
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like"],
        "pretrain_method": [StrOptions({"cd", "pcd"})],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "pretrain_lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "finetune": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, hidden_layer_sizes=(100, 100), *, pretrain_method="cd", pretrain_epochs=50, pretrain_lr=0.05,
                 batch_size=10, epochs=50, learning_rate=0.1, momentum=0.9, weight_decay=3e-5, finetune=True,
                 random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.pretrain_method = pretrain_method
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.finetune = finetune
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Pretrain the RBMs on X, then fine-tune the unrolled network on (X, y); returns self."""
        from ..runtime.recipes.backprop import Network, unroll
        from ..runtime.stack import CompiledStack

        sizes = self._sizes()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        X = X.astype(np.float64, copy=False)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        init_seed, train_seed = seeds(self.random_state)
        pretrain_seed, tune_seed = (int(s) for s in np.random.SeedSequence(train_seed).generate_state(2))
        widths = (X.shape[1],) + sizes
        levels = [compile_sized("rbm", {"nv": below, "nh": above}, "float64", init_seed + number)
                  for number, (below, above) in enumerate(zip(widths, widths[1:]))]
        with blas_threads(int(self.batch_size) * max(a * b for a, b in zip(widths, widths[1:]))):
            self.pretrain_history_ = []
            if self.pretrain_epochs > 0:
                histories = CompiledStack(None, levels).fit(
                    X, method=self.pretrain_method, k=1, epochs=int(self.pretrain_epochs),
                    batch_size=int(self.batch_size), lr=float(self.pretrain_lr), seed=pretrain_seed, verbose=0,
                    chains=int(self.batch_size) if self.pretrain_method == "pcd" else None,
                    check_data=False)  # as BernoulliRBM: any real features (scikit-learn's checks send negative ones)
                self.pretrain_history_ = [list(history) for history in histories]
            weights, biases = unroll(levels)
            self.network_ = Network(weights, biases, len(self.classes_), np.random.default_rng(tune_seed))
            self.history_ = self.network_.train(
                X, encoded, epochs=int(self.epochs), lr=float(self.learning_rate), momentum=float(self.momentum),
                batch_size=int(self.batch_size), weight_decay=float(self.weight_decay),
                frozen=0 if self.finetune else len(sizes))
        return self

    def predict_log_proba(self, X):
        """log p(class | x) for each row: (n_samples, n_classes), in the order of `classes_`."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.network_.predict_log_proba(X)

    def predict_proba(self, X):
        """p(class | x) for each row: the network's softmax output."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """The most probable class of each row."""
        log_p = self.predict_log_proba(X)
        return self.classes_[np.argmax(log_p, axis=1)]

    def _sizes(self) -> tuple[int, ...]:
        """hidden_layer_sizes as a tuple of positive ints, or a ValueError saying what is wrong with it."""
        sizes = np.asarray(self.hidden_layer_sizes).reshape(-1) if np.ndim(self.hidden_layer_sizes) else None
        if sizes is None or len(sizes) == 0 or sizes.dtype.kind not in "iu" or np.any(sizes < 1):
            raise ValueError(f"hidden_layer_sizes must be a non-empty sequence of positive ints, "
                             f"got {self.hidden_layer_sizes!r}")
        return tuple(int(size) for size in sizes)
