"""`RBMClassifier`: the classification RBM (Larochelle and Bengio 2008) as a scikit-learn classifier."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..runtime.threads import blas_threads
from ._common import compile_sized, pack_compiled, seeds, unpack_compiled


class RBMClassifier(ClassifierMixin, BaseEstimator):
    """A model with a one-hot label layer (by default `class_rbm`) trained on (X, y) and asked p(y | x).

    The classes go one-hot into the model's one-hot visible layer and the
    features into its other visible layer; `predict_proba` is p(y | x)
    exactly: exp(-F(x, y)) normalised over every class, F the free energy
    with the hidden layer summed out (`pgmdsl.evaluate.label_log_probabilities`).

    Parameters
    ----------
    n_components : int, default=100
        Hidden units (the model's size `nh`).
    model : str or path, default="class_rbm"
        A standard-library name or a `.dgm` path: a model with two visible
        layers, one of them one-hot (the labels), whose hidden layers the
        compiler sums out. Its sizes `nx` and `ny` (where declared) are set
        from the features and the classes, `nh` from `n_components`.
    objective : {"hybrid", "discriminative", "generative"}, default="hybrid"
        What training climbs: log p(y | x) plus `generative_weight` times
        log p(x, y) (CD/PCD), log p(y | x) alone (its exact gradient), or
        log p(x, y) alone.
    learning_rate : float, default=0.1
    n_iter : int, default=30
        Epochs.
    batch_size : int, default=10
    method : {"pcd", "cd"}, default="pcd"
        The generative step's sampler (hybrid and generative objectives).
    k : int, default=1
    momentum : float in [0, 1), default=0.0
    weight_decay : float, default=0.0
    generative_weight : float, default=0.01
    dtype : {"float64", "float32"} or None, default=None
        None: the data's (float32 stays float32, anything else float64).
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    compiled_ : pgmdsl.runtime.compiled.Compiled
        The trained model (`compiled_.params`).
    history_ : list of dict
        Per-epoch metrics, the training rows' label accuracy and log p(y | x) among them.
    n_features_in_ : int
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "model": [str, os.PathLike],
        "objective": [StrOptions({"hybrid", "discriminative", "generative"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"pcd", "cd"})],
        "k": [Interval(Integral, 1, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "generative_weight": [Interval(Real, 0, None, closed="left")],
        "dtype": [StrOptions({"float64", "float32"}), None],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=100, *, model="class_rbm", objective="hybrid", learning_rate=0.1, n_iter=30,
                 batch_size=10, method="pcd", k=1, momentum=0.0, weight_decay=0.0, generative_weight=0.01,
                 dtype=None, random_state=None):
        self.n_components = n_components
        self.model = model
        self.objective = objective
        self.learning_rate = learning_rate
        self.n_iter = n_iter
        self.batch_size = batch_size
        self.method = method
        self.k = k
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.generative_weight = generative_weight
        self.dtype = dtype
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train on features X and classes y; returns self."""
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        init_seed, train_seed = seeds(self.random_state)
        self.compiled_ = self._compile(X.shape[1], len(self.classes_), init_seed, X.dtype)
        data = {self._features: X, self._labels: np.eye(len(self.classes_), dtype=X.dtype)[encoded]}
        with blas_threads(int(self.batch_size) * X.shape[1] * int(self.n_components)):
            history = self.compiled_.fit(
                data, method=self.method, k=int(self.k), epochs=int(self.n_iter), batch_size=int(self.batch_size),
                lr=float(self.learning_rate), momentum=float(self.momentum), weight_decay=float(self.weight_decay),
                seed=train_seed, verbose=0, objective=self.objective, labels=self._labels,
                generative_weight=float(self.generative_weight),
                chains=int(self.batch_size) if self.method == "pcd" else None,
                check_data=False)  # as BernoulliRBM: any real features (scikit-learn's checks send negative ones)
        self.history_ = list(history)
        return self

    def predict_log_proba(self, X):
        """log p(class | x) for each row: (n_samples, n_classes), in the order of `classes_`."""
        from ..runtime.labels import label_log_probabilities

        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        log_p, states = label_log_probabilities(self.compiled_, {self._features: X}, self._labels)
        return log_p[:, np.argsort(np.argmax(states, axis=1))]  # the one-hot states, put in class order

    def predict_proba(self, X):
        """p(class | x) for each row, exact: every class enumerated."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """The most probable class of each row."""
        log_p = self.predict_log_proba(X)
        return self.classes_[np.argmax(log_p, axis=1)]

    def __getstate__(self):
        """Picklable: the Compiled (a generated module) travels as its .dgm source, sizes and parameters."""
        return pack_compiled(self.__dict__)

    def __setstate__(self, state):
        self.__dict__.update(unpack_compiled(state))

    def _compile(self, n_features: int, n_classes: int, seed: int, data_dtype):
        """The model sized to the data; sets which of its visible layers take the features and the labels."""
        compiled = compile_sized(self.model, {"nx": n_features, "ny": n_classes, "nh": self.n_components},
                                 self.dtype or np.dtype(data_dtype).name, seed)
        visible = {n: info for n, info in compiled.layers.items() if info["role"] in ("visible", "input")}
        labels = [n for n, info in visible.items() if info["unit"] == "onehot" and len(info["shape"]) == 1]
        if len(visible) != 2 or len(labels) != 1:
            raise ValueError(f"model {compiled.model.name} must have two visible layers, one of them one-hot with "
                             f"one axis (the labels); it has {', '.join(visible) or 'none'}")
        (features,) = [n for n in visible if n != labels[0]]
        widths = {labels[0]: (visible[labels[0]]["shape"][0], n_classes, "classes"),
                  features: (int(np.prod(visible[features]["shape"])), n_features, "features")}
        for layer, (units, wanted, what) in widths.items():
            if units != wanted:
                raise ValueError(f"model {compiled.model.name}'s layer '{layer}' has {units} units but the data has "
                                 f"{wanted} {what}; declare sizes nx, ny (and nh) so they can be set")
        self._features, self._labels = features, labels[0]
        return compiled
