"""`RBM`: a drop-in for scikit-learn's BernoulliRBM (see the package's notes)."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import DSLError
from ..runtime.threads import blas_threads
from ._common import compile_sized, host, pack_compiled, seeds, unpack_compiled

__all__ = ["RBM"]


class RBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """A pgmdsl model (by default the binary RBM) as a scikit-learn transformer.

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units (the model's size argument `nh`).
    model : str or path, default="rbm"
        A standard-library model name or a `.dgm` path. The estimator sets the
        model's size `nv` from the number of features and `nh` from
        `n_components` where the model declares them; `sizes` sets others.
        The model must observe exactly one layer (its visible layer).
    learning_rate : float, default=0.1
        SGD step size (on the mean gradient of a minibatch, as BernoulliRBM).
    batch_size : int, default=10
        Rows per minibatch, and number of persistent chains for PCD.
    n_iter : int, default=10
        Epochs (passes over the training data). 0 initialises only.
    method : {"pcd", "cd"}, default="pcd"
        Persistent contrastive divergence (as BernoulliRBM) or CD-k.
    k : int, default=1
        Gibbs sweeps per update.
    momentum : float in [0, 1), default=0.0
    weight_decay : float, default=0.0
        L2 penalty on parameters with two or more axes (the weights).
    dtype : {"float64", "float32"} or None, default=None
        Dtype of the compiled model, of its parameters and of `transform`'s
        output. None: the training data's, as BernoulliRBM (float32 data
        trains in float32; anything else in float64).
    sizes : dict or None, default=None
        Further size arguments of the model (e.g. ``{"n2": 200}`` for `dbm`).
    data_init : bool, default=False
        Apply the model's data-dependent initialisers to the training data in
        `fit` (for `rbm`: visible biases at the log odds of each feature's
        mean, Hinton 2010). False: they keep their no-data value, 0, as
        BernoulliRBM's visible biases; on scikit-learn's digits example this
        gave the classifier better features (bench/README.md).
    verbose : int, default=0
        When > 0, print the mean pseudo-log-likelihood after every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial parameters, the minibatch order and the Gibbs draws.

    Attributes
    ----------
    compiled_ : pgmdsl.runtime.compiled.Compiled
        The compiled model with its trained parameters (`compiled_.params`).
    components_ : ndarray of shape (n_components, n_features_in_)
        `W.T`, as BernoulliRBM's; reading and assigning go to `compiled_.params`.
    intercept_hidden_ : ndarray of shape (n_components,)
        The hidden biases `b`.
    intercept_visible_ : ndarray of shape (n_features_in_,)
        The visible biases `a`.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has feature names that are all strings.
    n_iter_ : int
        Epochs run by `fit`, plus one for each `partial_fit` call since.
    history_ : list of dict
        Per-epoch metrics from the trainer (reconstruction error, seconds).
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "model": [str, os.PathLike],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "method": [StrOptions({"pcd", "cd"})],
        "k": [Interval(Integral, 1, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "dtype": [StrOptions({"float64", "float32"}), None],
        "sizes": [dict, None],
        "data_init": ["boolean"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=256, *, model="rbm", learning_rate=0.1, batch_size=10, n_iter=10,
                 method="pcd", k=1, momentum=0.0, weight_decay=0.0, dtype=None, sizes=None, data_init=False,
                 verbose=0, random_state=None):
        self.n_components = n_components
        self.model = model
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.method = method
        self.k = k
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dtype = dtype
        self.sizes = sizes
        self.data_init = data_init
        self.verbose = verbose
        self.random_state = random_state

    # ---- fitting ----
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to X by `n_iter` epochs of minibatch PCD-k (or CD-k).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, values in [0, 1] for binary visible units.
        y : ignored

        Visible biases start at 0 unless `data_init` (see the class notes).
        This is what `Compiled.fit` runs, except that `Compiled.fit` always
        applies the data-dependent initialisers.

        Returns
        -------
        self : RBM
        """
        X = self._validate(X, reset=True)
        init_seed, train_seed = self._seeds()
        compiled = self._compile(X.shape[1], init_seed, X.dtype)
        self.compiled_ = compiled
        self._n_features_out = self._hidden_width()
        self._trainer = self._carried = self._gibbs_rng = self._twin = None
        from ..runtime.train import Trainer

        trainer = Trainer(compiled, X, epochs=max(int(self.n_iter), 1), seed=train_seed, verbose=0,
                          callbacks=(self._report(X),) if self.verbose else (), **self._options())
        if self.data_init:
            trainer.start()
        with self._blas_threads(X.shape[1]):
            self.history_ = list(trainer.run()) if self.n_iter > 0 else []
        compiled.history = self.history_
        self._carried = _snapshot(trainer)  # partial_fit goes on with these chains, momentum and generator
        self.n_iter_ = int(self.n_iter)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One update on X taken as a single minibatch (BernoulliRBM's semantics).

        The first call builds the model (data-dependent initialisers are not
        applied: see the module notes); the persistent chains, momentum and
        random generator carry over from call to call, and from `fit` to the
        calls after it.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self : RBM
        """
        first = not hasattr(self, "compiled_")
        X = self._validate(X, reset=first)
        if first:
            init_seed, _ = self._seeds()
            self.compiled_ = self._compile(X.shape[1], init_seed, X.dtype)
            self._n_features_out = self._hidden_width()
            self._trainer = self._carried = self._gibbs_rng = self._twin = None
            self.n_iter_ = 0
            self.history_ = []
        trainer = self._partial_trainer(X)
        from ..runtime.train import TrainingDiverged, as_data

        good = {name: value.copy() for name, value in self.compiled_.params.items()}
        trainer.update(as_data(self.compiled_, X), float(self.learning_rate))
        trainer.updates += 1
        xp = self.compiled_.xp
        bad = [name for name, value in self.compiled_.params.items() if not bool(xp.all(xp.isfinite(value)))]
        if bad:
            self.compiled_.params.update(good)
            raise TrainingDiverged(f"partial_fit diverged: {', '.join(bad)} became NaN or infinite; "
                                   "parameters restored. Try a smaller learning_rate.")
        self.n_iter_ += 1
        return self

    # ---- using a fitted model ----
    def transform(self, X):
        """Hidden conditional means E[h | v = X] (for the RBM, P(h=1 | v)).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
            For models with several latent layers, their mean-field means,
            flattened and concatenated in declaration order.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        hidden = self.compiled_.transform(X)
        if isinstance(hidden, dict):
            hidden = [host(value).reshape(len(X), -1) for value in hidden.values()]
            return np.concatenate(hidden, axis=1).astype(self.compiled_.dtype, copy=False)
        return np.asarray(host(hidden)).reshape(len(X), -1)

    def score_samples(self, X):
        """The exact pseudo-log-likelihood of each row: sum over i of log P(v_i | v_-i).

        For binary visible units P(v_i | v_-i) = sigmoid(F(v with unit i
        flipped) - F(v)), F the free energy, so the score is
        sum_i log sigmoid(F(flip_i v) - F(v)): n_features free-energy
        evaluations per row, deterministic. BernoulliRBM's score_samples is
        n_features * log sigmoid(F(flip_i v) - F(v)) for one random i per row:
        an unbiased estimate of this sum (same mean over i, more noise).
        A flip is 1 - v (binary units) or -v (spins); X should hold 0/1 values.
        This is `pgmdsl.evaluate.pseudo_log_likelihood`, computed in float64.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        pseudo_log_likelihood : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return self._pseudo_log_likelihood(X)

    def free_energy(self, X):
        """F(v) per row: -log of exp(-E) summed over the hidden units (BernoulliRBM's `_free_energy`)."""
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return self._free_energy(X)

    def gibbs(self, v):
        """One block-Gibbs sweep from v: hidden units given v, then visible units given them.

        Parameters
        ----------
        v : array-like of shape (n_samples, n_features)

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features)
            A draw of the visible units (floats of the model's dtype).
        """
        check_is_fitted(self)
        v = self._validate(v, reset=False)
        from ..runtime.sampling import gibbs, initial_state
        from ..runtime.train import as_data

        if getattr(self, "_gibbs_rng", None) is None:
            self._gibbs_rng = np.random.default_rng(self._seeds()[1])
        c = self.compiled_
        given = {name: c.xp.asarray(value) for name, value in as_data(c, v).items()}
        state = gibbs(c, initial_state(c, len(v), self._gibbs_rng, given), self._gibbs_rng, steps=1)
        return np.asarray(host(state[self._visible])).reshape(len(v), -1)

    # ---- BernoulliRBM's attributes, backed by compiled_.params ----
    @property
    def components_(self):
        """The weights, (n_components, n_features), as BernoulliRBM's components_."""
        return self._param("W").T

    @components_.setter
    def components_(self, value):
        self._set_param("W", np.asarray(value).T)

    @property
    def intercept_hidden_(self):
        """The hidden biases, (n_components,), as BernoulliRBM's."""
        return self._param("b")

    @intercept_hidden_.setter
    def intercept_hidden_(self, value):
        self._set_param("b", value)

    @property
    def intercept_visible_(self):
        """The visible biases, (n_features,), as BernoulliRBM's."""
        return self._param("a")

    @intercept_visible_.setter
    def intercept_visible_(self, value):
        self._set_param("a", value)

    def _param(self, name):
        compiled = self.__dict__.get("compiled_")
        if compiled is None:
            raise AttributeError(f"{type(self).__name__} is not fitted yet")
        if name not in compiled.params:
            raise AttributeError(f"model {compiled.model.name} has no parameter '{name}' (its parameters: "
                                 f"{', '.join(compiled.params)}); use compiled_.params")
        value = compiled.params[name]
        return value if isinstance(value, np.ndarray) else host(value)

    def _set_param(self, name, value):
        current = self._param(name)
        value = np.asarray(value)
        if value.shape != current.shape:
            raise ValueError(f"parameter '{name}' has shape {current.shape}, got an array of shape {value.shape}")
        self.compiled_.params[name] = self.compiled_.xp.asarray(value, dtype=self.compiled_.dtype).copy()

    # ---- scikit-learn protocol ----
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = [self.dtype] if self.dtype else ["float64", "float32"]
        return tags

    def __getstate__(self):
        """Picklable: the Compiled (a generated module) travels as its .dgm source, sizes and parameters."""
        state = dict(self.__dict__)
        trainer = state.pop("_trainer", None)
        state.pop("_twin", None)
        if trainer is not None:
            state["_carried"] = _snapshot(trainer)
        return pack_compiled(state)

    def __setstate__(self, state):
        self.__dict__.update(unpack_compiled(state))
        self._trainer = None

    # ---- helpers ----
    def _validate(self, X, reset):
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=reset)
        if sp.issparse(X):
            X = X.toarray()
        return X

    def _seeds(self) -> tuple[int, int]:
        return seeds(self.random_state)

    def _options(self) -> dict:
        return {
            "method": self.method,
            "k": int(self.k),
            "batch_size": int(self.batch_size),
            "chains": int(self.batch_size) if self.method == "pcd" else None,
            "lr": float(self.learning_rate),
            "momentum": float(self.momentum),
            "weight_decay": float(self.weight_decay),
        }

    def _compile(self, n_features: int, seed: int, data_dtype):
        compiled = compile_sized(self.model, {"nv": n_features, "nh": self.n_components},
                                 self.dtype or np.dtype(data_dtype).name, seed, extra=self.sizes)
        observed = [n for n, info in compiled.layers.items() if info["role"] in ("visible", "input")]
        if len(observed) != 1:
            raise ValueError(f"model {compiled.model.name} observes {', '.join(observed) or 'no layer'}; "
                             f"{type(self).__name__} needs a model with exactly one visible layer")
        width = int(np.prod(compiled.layers[observed[0]]["shape"]))
        if width != n_features:
            raise ValueError(f"model {compiled.model.name}'s visible layer '{observed[0]}' has {width} units but X has "
                             f"{n_features} features; set the model's sizes with `sizes`")
        self._visible = observed[0]
        return compiled

    def _blas_threads(self, n_features: int):
        return blas_threads(int(self.batch_size) * n_features * self._hidden_width())

    def _hidden_width(self) -> int:
        layers = self.compiled_.layers
        hidden = [info["shape"] for info in layers.values() if info["role"] == "hidden"]
        return int(sum(np.prod(shape) for shape in hidden))

    def _partial_trainer(self, X):
        from ..runtime.train import Trainer

        if getattr(self, "_trainer", None) is None:
            _, seed = self._seeds()
            trainer = Trainer(self.compiled_, X, epochs=1, seed=seed, verbose=0, **self._options())
            carried = self.__dict__.get("_carried")
            if carried is not None:  # after fit, or unpickled between partial_fit calls
                xp = self.compiled_.xp
                trainer.chains = {k: xp.asarray(v) for k, v in carried["chains"].items()} or None
                trainer.velocity = {k: xp.asarray(v) for k, v in carried["velocity"].items()}
                trainer.rng.bit_generator.state = carried["rng"]
                trainer.updates = carried["updates"]
            self._trainer, self._carried = trainer, None
        return self._trainer

    def _free_energy(self, X):
        c = self.compiled_
        if tuple(c.kept) != (self._visible,):
            raise ValueError(f"model {c.model.name}'s free energy needs layers {', '.join(c.kept)}, "
                             "not the visible layer alone")
        shape = tuple(c.layers[self._visible]["shape"])
        free = c.free_energy({self._visible: c.xp.asarray(X.reshape((-1,) + shape), dtype=c.dtype)})
        return np.asarray(host(free), dtype=np.float64)

    def _float64(self):
        """The model in float64 with the current parameters: pseudo-likelihoods are differences of free
        energies, too cancellation-prone for float32 (and float32 GEMM rounding would depend on the batch)."""
        c = self.compiled_
        if c.dtype == np.float64:
            return c
        twin = self.__dict__.get("_twin")
        if twin is None:
            twin = c.model.compile(backend=c.backend, dtype="float64")
            self._twin = twin
        for name, value in c.params.items():
            twin.params[name] = twin.xp.asarray(value, dtype=np.float64)
        return twin

    def _pseudo_log_likelihood(self, X):
        from ..evaluate import pseudo_log_likelihood

        c = self._float64()
        try:
            return pseudo_log_likelihood(c, {self._visible: np.asarray(X, dtype=np.float64)})
        except DSLError as error:
            raise ValueError(f"score_samples: {error.message}") from None

    def _report(self, X):
        """verbose: one line per epoch, as BernoulliRBM prints."""
        sample = X[:1000]

        def report(compiled, row):
            try:
                score = self._pseudo_log_likelihood(sample).mean()
            except ValueError:  # no pseudo-likelihood for this model (continuous units, latent layers kept)
                score = float("nan")
            print(f"[{type(self).__name__}] Iteration {row['epoch']}, pseudo-likelihood = {score:.2f}, "
                  f"time = {row['seconds']:.2f}s")

        return report


def _snapshot(trainer) -> dict:
    """What partial_fit needs to go on from a trainer: chains, momentum, generator, update count (host arrays)."""
    return {
        "chains": {k: np.array(host(v)) for k, v in (trainer.chains or {}).items()},
        "velocity": {k: np.array(host(v)) for k, v in trainer.velocity.items()},
        "rng": trainer.rng.bit_generator.state,
        "updates": trainer.updates,
    }

