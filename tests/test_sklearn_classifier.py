"""pgmdsl.sklearn.RBMClassifier: scikit-learn's checks, p(y | x) against brute force, labels, pickling."""

import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from scipy.special import logsumexp  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from pgmdsl.sklearn import RBMClassifier  # noqa: E402

import exact  # noqa: E402

FAST = dict(n_components=8, n_iter=10, learning_rate=0.5, random_state=0)


def test_passes_scikit_learns_estimator_checks():
    """Every check passes; skipped only: array-API input (SCIPY_ARRAY_API unset) and pandas input (not installed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(RBMClassifier(**FAST), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input", "check_classifier_data_not_an_array"}, skipped


def test_predict_proba_is_the_brute_force_conditional():
    """p(y | x) = sum over h of exp(-E(x, y, h)), normalised over y, with the hand-written class_rbm energy."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (30, 4)).astype(float)
    y = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, 30)]
    model = RBMClassifier(n_components=3, n_iter=3, learning_rate=0.5, random_state=1).fit(X, y)
    assert list(model.classes_) == ["cat", "dog", "eel"]
    params = {k: np.asarray(v) for k, v in model.compiled_.params.items()}
    hs = exact.layer_states(model.compiled_.layers["h"])
    expected = np.empty((len(X), 3))
    for row, values in enumerate(X):
        for k in range(3):
            state = {"x": np.repeat(values[None], len(hs), 0), "y": np.repeat(np.eye(3)[k][None], len(hs), 0), "h": hs}
            expected[row, k] = logsumexp(-exact.class_rbm(params, state))
    expected -= logsumexp(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_log_proba(X), expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.predict_proba(X).sum(1), 1, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.predict(X), model.classes_[np.argmax(expected, 1)])


def test_classifies_digits_in_a_pipeline():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    pipeline = Pipeline([("scale", MinMaxScaler()),
                         ("rbm", RBMClassifier(n_components=64, n_iter=5, learning_rate=0.5,
                                               objective="discriminative", random_state=0))])
    assert pipeline.fit(X_train, y_train).score(X_test, y_test) > 0.9  # ten classes: chance is 0.1
    history = pipeline.named_steps["rbm"].history_
    assert len(history) == 5 and history[-1]["train_label_accuracy"] > history[0]["train_label_accuracy"]


def test_pickles_to_the_same_predictions_and_dtype_follows_the_data():
    rng = np.random.default_rng(2)
    X = rng.random((40, 5)).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(int)
    model = RBMClassifier(**FAST).fit(X, y)
    assert model.compiled_.dtype == np.float32 and model.predict_proba(X).shape == (40, 2)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert RBMClassifier(**FAST).fit(X.astype(np.float64), y).compiled_.dtype == np.float64


def test_a_model_without_a_label_layer_is_refused():
    X, y = np.zeros((4, 3)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="two visible layers, one of them one-hot"):
        RBMClassifier(model="rbm").fit(X, y)
