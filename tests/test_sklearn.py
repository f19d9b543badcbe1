"""pgmdsl.sklearn.RBM: scikit-learn's estimator checks, Pipeline use, partial_fit, and agreement with BernoulliRBM.

No estimator check is skipped or expected to fail (`expected_failed_checks`
is empty). scikit-learn itself skips one: `check_array_api_input` raises
SkipTest unless SCIPY_ARRAY_API=1 is set before scipy is imported;
`test_array_api_check_in_a_fresh_process` runs it with the variable set.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402
from scipy.special import expit  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import BernoulliRBM  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from pgmdsl.sklearn import RBM  # noqa: E402

EXPECTED_FAILED_CHECKS: dict[str, str] = {}  # none: every check passes


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@parametrize_with_checks(
    [
        RBM(n_components=8, n_iter=5, random_state=0),
        RBM(n_components=8, n_iter=3, method="cd", k=2, momentum=0.5, weight_decay=1e-4, dtype="float32",
            random_state=0),
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_array_api_check_in_a_fresh_process():
    script = (
        "from sklearn.utils.estimator_checks import check_array_api_input\n"
        "from pgmdsl.sklearn import RBM\n"
        "check_array_api_input('RBM', RBM(n_components=8, n_iter=3, random_state=0), array_namespace='numpy',\n"
        "                      expect_only_array_outputs=False)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "SCIPY_ARRAY_API": "1"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_in_a_pipeline_where_bernoulli_rbm_goes(digits):
    X, y = digits
    train, test = slice(0, 600), slice(600, 1200)
    scores = {}
    for name, rbm in [("ours", RBM(n_components=64, learning_rate=0.06, n_iter=5, random_state=0)),
                      ("theirs", BernoulliRBM(n_components=64, learning_rate=0.06, n_iter=5, random_state=0))]:
        pipeline = Pipeline([("rbm", rbm), ("logistic", LogisticRegression(C=10, max_iter=300))])
        scores[name] = pipeline.fit(X[train], y[train]).score(X[test], y[test])
    assert scores["ours"] > 0.7, scores
    assert scores["ours"] > scores["theirs"] - 0.03, scores
    pipeline.set_params(rbm=RBM(n_components=16, n_iter=2, random_state=0))
    assert pipeline.fit(X[train], y[train]).named_steps["rbm"].components_.shape == (16, 64)
    assert list(pipeline[:-1].get_feature_names_out()[:2]) == ["rbm0", "rbm1"]


def test_get_params_set_params_round_trip():
    rbm = RBM(n_components=7, learning_rate=0.03, n_iter=4, method="cd", k=3, momentum=0.5, dtype="float32",
              sizes={"nh": 7}, random_state=5)
    params = rbm.get_params()
    assert params["n_components"] == 7 and params["k"] == 3 and params["model"] == "rbm"
    other = RBM().set_params(**params)
    assert other.get_params() == params
    assert clone(rbm).get_params() == params
    assert set(params) >= {"n_components", "learning_rate", "batch_size", "n_iter", "verbose", "random_state"}
    assert set(BernoulliRBM().get_params()) <= set(params)  # every BernoulliRBM parameter, same names
    pipeline = Pipeline([("rbm", rbm)])
    pipeline.set_params(rbm__n_components=3, rbm__sizes=None)
    assert pipeline.named_steps["rbm"].n_components == 3


def test_attributes_are_the_compiled_parameters(digits):
    X, _ = digits
    rbm = RBM(n_components=12, n_iter=2, random_state=0).fit(X[:200])
    W, a, b = (rbm.compiled_.params[n] for n in "Wab")
    assert rbm.components_.shape == (12, 64) and rbm.n_features_in_ == 64 and rbm.n_iter_ == 2
    assert_array_equal(rbm.components_, W.T)
    assert_array_equal(rbm.intercept_visible_, a)
    assert_array_equal(rbm.intercept_hidden_, b)
    assert_allclose(rbm.transform(X[:50]), expit(X[:50] @ W + b), rtol=1e-12)
    assert len(rbm.history_) == 2
    # visible biases start at 0 as BernoulliRBM's; data_init=True applies the model's logit_mean initialiser
    assert_array_equal(RBM(n_components=12, n_iter=0, random_state=0).fit(X[:200]).intercept_visible_, 0)
    start = RBM(n_components=12, n_iter=0, data_init=True, random_state=0).fit(X[:200])
    p = np.clip(X[:200].mean(0), 0.01, 0.99)
    assert_allclose(start.intercept_visible_, np.log(p / (1 - p)))
    assert_array_equal(start.intercept_hidden_, 0)
    # after fit, partial_fit goes on from the fitted parameters and chains
    fitted = RBM(n_components=12, n_iter=2, random_state=0).fit(X[:200])
    before = fitted.components_.copy()
    fitted.partial_fit(X[200:210])
    assert fitted.n_iter_ == 3 and not np.array_equal(fitted.components_, before)
    chains = fitted._trainer.chains  # PCD's chains keep their hidden units, as BernoulliRBM's h_samples_
    assert set(chains) == {"h"} and chains["h"].shape == (10, 12) and set(np.unique(chains["h"])) <= {0.0, 1.0}


def test_partial_fit_is_one_update_per_call_and_survives_pickling(digits):
    X, _ = digits
    batches = [X[i:i + 10] for i in range(0, 60, 10)]
    straight = RBM(n_components=16, learning_rate=0.05, batch_size=10, random_state=3)
    for batch in batches:
        straight.partial_fit(batch)
    assert straight.n_iter_ == len(batches)
    assert straight.compiled_.params["a"].any()  # updated, though it started at 0 (no logit_mean in partial_fit)
    interrupted = RBM(n_components=16, learning_rate=0.05, batch_size=10, random_state=3)
    for batch in batches[:3]:
        interrupted.partial_fit(batch)
    interrupted = pickle.loads(pickle.dumps(interrupted))  # chains, momentum and generator state travel
    for batch in batches[3:]:
        interrupted.partial_fit(batch)
    for name in "Wab":
        assert_array_equal(interrupted.compiled_.params[name], straight.compiled_.params[name])
    # one update: the first call moves the hidden biases by lr * (data - model) hidden means
    one = RBM(n_components=16, learning_rate=0.05, batch_size=10, random_state=3)
    one.partial_fit(batches[0])
    assert not np.array_equal(one.intercept_hidden_, 0)
    with pytest.raises(ValueError, match="features"):
        one.partial_fit(X[:10, :32])


def test_free_energy_agrees_with_bernoulli_rbm(digits):
    """An independent implementation: BernoulliRBM's trained weights in our compiled rbm give its free energies."""
    import pgmdsl

    X, _ = digits
    theirs = BernoulliRBM(n_components=32, learning_rate=0.06, n_iter=3, random_state=0).fit(X)
    compiled = pgmdsl.load("rbm", nv=64, nh=32).compile(dtype="float64")
    compiled.params["W"] = theirs.components_.T.copy()
    compiled.params["a"] = theirs.intercept_visible_.copy()
    compiled.params["b"] = theirs.intercept_hidden_.copy()
    # BernoulliRBM._free_energy returns F(v) itself (-v.a - sum softplus(v W + b)), not -F
    assert_allclose(compiled.free_energy({"v": X}), theirs._free_energy(X), rtol=1e-12)

    ours = RBM(n_components=32, n_iter=0).fit(X)  # the estimator, loaded through its attributes
    ours.components_, ours.intercept_visible_, ours.intercept_hidden_ = (
        theirs.components_, theirs.intercept_visible_, theirs.intercept_hidden_)
    assert_allclose(ours.free_energy(X), theirs._free_energy(X), rtol=1e-12)
    assert_allclose(ours.transform(X), theirs.transform(X), rtol=1e-12)
    # score_samples: the exact pseudo-log-likelihood is the mean over i of BernoulliRBM's one-flip
    # estimate d * log sigmoid(F(flip_i v) - F(v)), computed here with BernoulliRBM's free energy
    rows = X[:40]
    estimates = []
    for i in range(64):
        flipped = rows.copy()
        flipped[:, i] = 1 - flipped[:, i]
        estimates.append(-64 * np.logaddexp(0, -(theirs._free_energy(flipped) - theirs._free_energy(rows))))
    assert_allclose(ours.score_samples(rows), np.mean(estimates, axis=0), rtol=1e-10)
    assert abs(theirs.score_samples(X).mean() - ours.score_samples(X).mean()) < 0.05 * abs(ours.score_samples(X).mean())


def test_gibbs_and_pickle(digits):
    X, _ = digits
    rbm = RBM(n_components=16, n_iter=1, random_state=0).fit(X[:100])
    v = rbm.gibbs(X[:5])
    assert v.shape == (5, 64) and set(np.unique(v)) <= {0.0, 1.0}
    assert not np.array_equal(rbm.gibbs(X[:5]), v)  # the generator moves on between calls
    copy = pickle.loads(pickle.dumps(rbm))
    assert_array_equal(copy.transform(X[:20]), rbm.transform(X[:20]))
    assert_array_equal(copy.score_samples(X[:20]), rbm.score_samples(X[:20]))


def test_unsuitable_models_are_reported(digits):
    X, _ = digits
    gaussian = RBM(model="gbrbm", n_components=8, n_iter=1, random_state=0).fit(X[:50])
    assert gaussian.transform(X[:5]).shape == (5, 8)
    with pytest.raises(ValueError, match="discrete"):
        gaussian.score_samples(X[:5])
    with pytest.raises(ValueError, match="no such model"):
        RBM(model="no_such_model", n_iter=1).fit(X[:20])


def test_a_refit_scores_with_the_new_model(tmp_path):
    """score_samples of a float32 model goes through a float64 twin; a refit must not keep the old one."""
    spin = tmp_path / "spin.dgm"
    spin.write_text("model spin(nv: int = 16, nh: int = 4)\nvisible v[nv]: binary\nhidden h[nh]: spin\n"
                    "param W[nv, nh] ~ normal(0, 0.1)\nparam b[nh] = 0\nenergy = -v[i]*W[i,j]*h[j] - b[j]*h[j]\n")
    X = (np.random.default_rng(0).random((30, 16)) < 0.5).astype(np.float32)
    model = RBM(n_components=4, n_iter=2, random_state=0).fit(X)
    model.score_samples(X)
    refitted = model.set_params(model=str(spin)).fit(X).score_samples(X)
    fresh = RBM(n_components=4, n_iter=2, random_state=0, model=str(spin)).fit(X).score_samples(X)
    np.testing.assert_allclose(refitted, fresh, rtol=1e-6)
