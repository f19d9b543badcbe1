"""Standardised real-valued data: the transform, its log-Jacobian, its place in the checkpoint, the default rate.

Also the warnings an epoch holds back (runtime.warned): folded into a
divergence's one line, shown once otherwise.
"""

import json
import re
import warnings

import numpy as np
import pytest

import pgmdsl
from pgmdsl import runs, units
from pgmdsl.errors import DSLError
from pgmdsl.evaluate.exact import exact_log_z, log_likelihood
from pgmdsl.runtime import standardize, warned
from pgmdsl.runtime.checkpoint import load_trained, read
from pgmdsl.runtime.train import TrainingDiverged
from archives import rewrite

RNG = np.random.default_rng(0)
ROWS = RNG.normal([100.0, -3.0, 0.5], [10.0, 0.1, 2.0], size=(200, 3))


def gbrbm(nv=3, nh=2):
    return pgmdsl.load("gbrbm", nv=nv, nh=nh).compile(dtype="float64")


# ---- the transform ----

def test_fit_gives_each_unit_mean_0_and_standard_deviation_1():
    s = standardize.fit(gbrbm(), {"v": ROWS})
    z = s.apply({"v": ROWS})["v"]
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1)
    np.testing.assert_allclose(s.undo("v", z), ROWS)
    assert s.layers == ("v",)


def test_a_constant_unit_keeps_scale_1_and_becomes_0():
    rows = ROWS.copy()
    rows[:, 1] = 0.1  # a float whose mean rounds: its std is not exactly 0
    s = standardize.fit(gbrbm(), {"v": rows})
    assert s.scale["v"][1] == 1.0
    np.testing.assert_allclose(s.apply({"v": rows})["v"][:, 1], 0, atol=1e-12)


def test_only_real_valued_observed_layers_are_standardised(monkeypatch):
    assert standardize.fit(pgmdsl.load("rbm", nv=3, nh=2).compile(), {"v": np.ones((4, 3))}) is None
    assert standardize.real_valued_layers(gbrbm()) == ["v"]  # not the binary hidden layer
    assert standardize.standardizable("gaussian") and not standardize.standardizable("binary")
    assert not standardize.standardizable(None)  # an input layer without a unit type
    halfline = units.UnitType("halfline", False, None, "", energy_form="quadratic", bounds=(0.0, float("inf")))
    monkeypatch.setattr(units, "get", lambda name: halfline)
    assert not standardize.standardizable("halfline")  # shifting would take its data below 0


def test_apply_leaves_other_layers_and_undo_other_layers_alone():
    s = standardize.Standardization({"v": np.array([1.0])}, {"v": np.array([2.0])})
    out = s.apply({"v": np.array([[3.0]]), "y": np.array([[1.0, 0.0]])})
    np.testing.assert_array_equal(out["v"], [[1.0]])
    np.testing.assert_array_equal(out["y"], [[1.0, 0.0]])
    np.testing.assert_array_equal(s.undo("y", [[5.0]]), [[5.0]])


def test_fit_refuses_data_without_the_layer_or_rows():
    with pytest.raises(DSLError, match="lacks layer 'v'"):
        standardize.fit(gbrbm(), {})
    with pytest.raises(DSLError, match="layer 'v' has no rows"):
        standardize.fit(gbrbm(), {"v": np.zeros((0, 3))})


def test_the_log_jacobian_puts_log_likelihoods_in_the_data_units():
    """A gbrbm of standardised rows z = (x - m) / s is a gbrbm of x with sigma' = s sigma, a' = m + s a,
    b' = b - (m / sigma') W: its exact log p(x) is log p(z) - sum(log s), what in_data_units reports."""
    model = gbrbm()
    model.params = {"W": RNG.normal(0, 0.5, (3, 2)), "a": RNG.normal(0, 0.3, 3), "b": RNG.normal(0, 0.3, 2),
                    "log_sigma": RNG.normal(0, 0.2, 3)}
    s = standardize.fit(model, {"v": ROWS})
    m, scale = s.mean["v"], s.scale["v"]
    z = s.apply({"v": ROWS})
    standardised = {"log_z": {"value": 0.0}, "data": {"rows": 200, "log_likelihood":
                    float(np.mean(log_likelihood(model, z, exact_log_z(model)))), "reconstruction": 0.5}}
    raw = gbrbm()
    sigma = scale * np.exp(model.params["log_sigma"])
    raw.params = {"W": model.params["W"], "a": m + scale * model.params["a"],
                  "b": model.params["b"] - (m / sigma) @ model.params["W"], "log_sigma": np.log(sigma)}
    expected = float(np.mean(log_likelihood(raw, {"v": ROWS}, exact_log_z(raw))))
    reported = runs.in_data_units(standardised, s)
    assert reported["data"]["log_likelihood"] == pytest.approx(expected, abs=1e-9)
    assert reported["data"]["reconstruction"] == 0.5 and reported["log_z"] == {"value": 0.0}


def test_default_lr_is_smaller_for_real_valued_observed_layers():
    assert runs.default_lr(pgmdsl.load("gbrbm")) == runs.REAL_VALUED_LR < runs.DEFAULT_LR
    assert runs.default_lr(pgmdsl.load("rbm")) == runs.DEFAULT_LR


def test_samples_come_back_in_the_data_units():
    model = gbrbm()
    model.fit(standardize.fit(model, {"v": ROWS}).apply({"v": ROWS}), epochs=2, lr=0.005, verbose=0)
    plain = runs.visible_samples(model, 500, steps=20)
    model.standardization = standardize.fit(model, {"v": ROWS})
    samples = runs.visible_samples(model, 500, steps=20)
    np.testing.assert_allclose(samples, model.standardization.undo("v", plain))
    assert abs(samples[:, 0].mean() - 100) < 5  # the data's mean, not the standardised 0


# ---- in the checkpoint ----

@pytest.fixture
def saved(tmp_path):
    model = gbrbm()
    model.standardization = standardize.fit(model, {"v": ROWS})
    return model.save(tmp_path / "model.npz"), model.standardization


def test_the_standardisation_round_trips_through_the_checkpoint(saved, tmp_path):
    path, original = saved
    loaded = load_trained(path).standardization
    assert loaded.layers == ("v",)
    np.testing.assert_array_equal(loaded.mean["v"], original.mean["v"])
    np.testing.assert_array_equal(loaded.scale["v"], original.scale["v"])
    assert load_trained(gbrbm().save(tmp_path / "plain.npz")).standardization is None
    assert read(tmp_path / "plain.npz")["standardization"] is None




@pytest.mark.parametrize("change, message", [
    (lambda c: c["standardize/scale/v"].__setitem__(1, 0.0), r"'scale' of layer 'v' .* holds values <= 0"),
    (lambda c: c["standardize/scale/v"].__setitem__(0, -2.0), r"'scale' of layer 'v' .* holds values <= 0"),
    (lambda c: c["standardize/mean/v"].__setitem__(2, np.nan), r"'mean' of layer 'v' .* holds NaN or infinite"),
    (lambda c: c.update({"standardize/mean/v": np.zeros(4)}), r"'mean' of layer 'v' .* has shape \(4,\); "
                                                               r"model gbrbm\(nv=3, nh=2\) declares \(3,\)"),
    (lambda c: c.pop("standardize/scale/v"), r"the standardisation of layer v lacks its mean or its scale"),
    (lambda c: c.update({"standardize/mean/h": np.zeros(2), "standardize/scale/h": np.ones(2)}),
     r"'mean' of layer 'h' .* is not one of model gbrbm's observed real-valued layers \(v\)"),
    (lambda c: c.update({"standardize/scale/v": np.full(3, "x")}), r"'scale' of layer 'v' .* holds <U1 values"),
])
def test_a_damaged_standardisation_is_one_line(saved, change, message):
    path, _ = saved
    rewrite(path, change)
    with pytest.raises(DSLError, match=f"^error: checkpoint {path}: .*{message}") as error:
        load_trained(path)
    assert "\n" not in str(error.value)


# ---- the warnings of an epoch ----

def _numpy_warnings():
    with np.errstate(over="warn", invalid="warn", divide="warn"):
        for _ in range(2):  # twice from one line: shown once
            np.exp(np.array([1000.0]))
        np.array([np.inf]) * 0
        np.array([1.0]) / 0


def test_summary_groups_numpy_warnings_and_names_the_first_function():
    with warned.held() as caught:
        _numpy_warnings()
        warnings.warn("not numerical", UserWarning)
    assert warned.summary(caught) == ("overflow in exp, invalid value in multiply, divide by zero in divide "
                                      "(first in _numpy_warnings)")
    assert warned.summary([]) == ""


def test_release_shows_the_held_warnings_once(recwarn):
    shown = set()
    with warned.held() as caught:
        _numpy_warnings()
    assert len(recwarn) == 0
    warned.release(caught, shown)
    warned.release(caught, shown)
    assert sorted(str(w.message) for w in recwarn) == ["divide by zero encountered in divide",
                                                       "invalid value encountered in multiply",
                                                       "overflow encountered in exp"]


def test_a_diverging_run_says_what_numpy_warned_and_warns_nothing(recwarn):
    model = gbrbm()
    rows = standardize.fit(model, {"v": ROWS}).apply({"v": ROWS})
    with pytest.raises(TrainingDiverged) as error:
        model.fit(rows, epochs=3, lr=50.0, verbose=0)
    message = str(error.value)
    assert re.search(r"became NaN or infinite; parameters restored to the end of epoch \d+\. numpy warned of "
                     r"overflow in \w+.*\(first in \w+\)\. Try a smaller lr\.$", message), message
    assert "\n" not in message
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_metrics_json_lists_the_standardised_layers(tmp_path):
    from pgmdsl.cli import main

    np.save(tmp_path / "rows.npy", ROWS)
    assert main(["train", "gbrbm", "--data", str(tmp_path / "rows.npy"), "--set", "nh=2", "--epochs", "1",
                 "--ais-runs", "0", "-o", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["standardized"] == ["v"]
