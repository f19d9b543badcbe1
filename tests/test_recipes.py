"""The defaults `pgmdsl train` picks by structure (runtime.recipes), and what a sequence model needs before it
trains: its structure read from the model, sequence data specs, and one standardisation for frames and past."""

import numpy as np
import pytest

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.runtime import recipes, standardize
from pgmdsl.runtime.checkpoint import load_trained
from pgmdsl.runtime.datasets import DataError, load_array, load_data, load_sequences
from pgmdsl.runtime.sequences import sequence_structure
from archives import rewrite

# A sequence model of the user's own, with names of its own: the recipe follows the structure, not the name.
MOTION = """model motion(c: int = 3, k: int = 2, m: int = 4)
input   before[k, c]
visible now[c]: gaussian
hidden  z[m]: binary
param W[c, m] ~ normal(0, 0.01)
param A[k, c, c] ~ normal(0, 0.01)
param a[c] = 0
energy:
    box:  (now[i] - a[i])^2 / 2
    ar:   -now[i] * A[t, p, i] * before[t, p]
    vw:   -now[i] * W[i, j] * z[j]
"""


def motion():
    return pgmdsl.parse(MOTION, filename="motion.dgm")


# ---- the structure and the recipe ----

def test_sequence_structure_reads_a_model_or_a_compiled_model():
    assert sequence_structure(pgmdsl.load("crbm")) == ("past", "v")
    assert sequence_structure(pgmdsl.load("crbm", nv=2, nh=2, order=1).compile()) == ("past", "v")
    assert sequence_structure(motion()) == ("before", "now")
    for name in ("rbm", "gbrbm", "structured_crbm", "class_rbm", "dbn"):  # structured_crbm's input is not frames
        assert sequence_structure(pgmdsl.load(name)) is None, name


def test_choose_picks_the_sequence_recipe_by_structure():
    assert recipes.choose(pgmdsl.load("crbm")) is recipes.SEQUENCE
    assert recipes.choose(motion()) is recipes.SEQUENCE
    assert recipes.choose(pgmdsl.load("rbm")) is recipes.DEFAULT
    assert recipes.choose(pgmdsl.load("structured_crbm")) is recipes.DEFAULT
    assert set(recipes.RECIPES) == {"default", "sequence", "dbm", "convolutional", "joint", "greedy", "updown"}
    assert recipes.choose(pgmdsl.load("conv_rbm")) is recipes.CONVOLUTIONAL


def test_fill_keeps_what_was_given_and_fills_the_rest():
    given = {"method": None, "k": None, "epochs": 5, "lr": None, "batch_size": None, "momentum": 0.5, "seed": 3}
    options, recipe, filled = recipes.fill(pgmdsl.load("crbm"), given)
    assert recipe is recipes.SEQUENCE and filled == ("method", "k", "lr", "batch_size")
    assert options == {"method": "cd", "k": 1, "epochs": 5, "batch_size": 100, "momentum": 0.5, "seed": 3,
                       "lr": {"W": 0.01, "A": 0.01, "B": 0.01, "a": 0.01, "b": 0.01, "log_sigma": 0.001}}
    options, recipe, filled = recipes.fill(pgmdsl.load("rbm"), {**given, "epochs": None})
    assert recipe is recipes.DEFAULT and "epochs" in filled
    assert (options["method"], options["epochs"], options["lr"], options["batch_size"]) == ("pcd", 20, 0.05, 10)


def test_the_sequence_rates_cover_every_parameter_of_any_sequence_model():
    assert recipes.SEQUENCE.defaults(motion())["lr"] == {"W": 0.01, "A": 0.01, "a": 0.01}
    from pgmdsl.runtime.options import options

    options(**recipes.SEQUENCE.defaults(pgmdsl.load("crbm"))).parameter_rates(
        [p.name for p in pgmdsl.load("crbm").params])  # the trainer takes them: no name missing or unknown


def test_evaluation_default_and_default_lr():
    assert recipes.evaluation_default(pgmdsl.load("crbm"), "ais_distributions", None) == 1000
    assert recipes.evaluation_default(pgmdsl.load("crbm"), "ais_distributions", 50) == 50
    assert recipes.evaluation_default(pgmdsl.load("rbm"), "ais_distributions", None) is None
    assert recipes.default_lr(pgmdsl.load("gbrbm")) == recipes.REAL_VALUED_LR
    assert recipes.default_lr(pgmdsl.load("rbm")) == recipes.DEFAULT_LR


# ---- sequence data ----

def test_load_sequences_of_the_built_in_oscillators():
    assert load_sequences("oscillators", 5).shape == (10, 400, 5)
    assert load_sequences("oscillators:2,30", 3).shape == (2, 30, 3)
    for bad in ("oscillators:2", "oscillators:a,3", "oscillators:2,3,4"):
        with pytest.raises(DataError, match="oscillators:S,T takes two positive integers"):
            load_sequences(bad, 3)
    with pytest.raises(DataError, match="frames must be an integer >= 2"):
        load_sequences("oscillators:2,1", 3)


def test_load_sequences_of_files(tmp_path):
    one = np.arange(12.0).reshape(6, 2)
    np.save(tmp_path / "one.npy", one)
    np.testing.assert_array_equal(load_sequences(str(tmp_path / "one.npy"), 2), one[None])
    np.savez(tmp_path / "several.npz", frames=np.zeros((3, 6, 2)))
    assert load_sequences(str(tmp_path / "several.npz"), 2).shape == (3, 6, 2)
    cases = [(np.zeros(6), r"shape \(6,\); sequences are one \(T frames, C channels\)"),
             (np.zeros((2, 3, 4, 5)), r"shape \(2, 3, 4, 5\)"),
             (np.full((4, 2), np.nan), "NaN or infinite"),
             (np.zeros((0, 2)), "an empty array"),
             (np.array([["a", "b"]]), "not numbers")]
    for number, (array, message) in enumerate(cases):
        path = tmp_path / f"bad{number}.npy"
        np.save(path, array)
        with pytest.raises(DataError, match=message):
            load_sequences(str(path), 2)
    with pytest.raises(DataError, match="rows, not sequences"):
        load_sequences("digits", 2)
    with pytest.raises(DataError, match="not a sequence data set or file"):
        load_sequences("walking.csv", 2)


def test_rows_and_sequences_do_not_mix():
    with pytest.raises(DataError, match="sequences, for a sequence model"):
        load_data("oscillators")


def test_load_array_reads_one_array_as_stored(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((2, 3, 4)))
    assert load_array(str(tmp_path / "a.npy"), "--mask a.npy").shape == (2, 3, 4)
    with pytest.raises(DataError, match="^error: --mask b.npy: no such file"):
        load_array(str(tmp_path / "b.npy"), "--mask b.npy")
    with pytest.raises(DataError, match="expected a .npy file"):
        load_array("mask.txt", "--mask mask.txt")
    np.savez(tmp_path / "two.npz", a=np.ones(2), b=np.ones(2))
    with pytest.raises(DataError, match="must hold exactly one array"):
        load_array(str(tmp_path / "two.npz"), "--mask two.npz")
    np.save(tmp_path / "objects.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DSLError):  # never unpickled
        load_array(str(tmp_path / "objects.npy"), "--mask objects.npy")


# ---- one standardisation for the frame and its past ----

RNG = np.random.default_rng(0)
SEQUENCES = RNG.normal([10.0, -2.0], [3.0, 0.5], size=(3, 40, 2))


def crbm():
    return pgmdsl.load("crbm", nv=2, nh=3, order=2).compile(dtype="float64")


def test_the_past_takes_the_frames_transform():
    c = crbm()
    s = standardize.fit_frames(c, SEQUENCES)
    frames = SEQUENCES.reshape(-1, 2)
    np.testing.assert_allclose(s.mean["v"], frames.mean(0))
    np.testing.assert_allclose(s.scale["v"], frames.std(0))
    np.testing.assert_array_equal(s.mean["past"], np.stack([s.mean["v"]] * 2))
    np.testing.assert_array_equal(s.scale["past"], np.stack([s.scale["v"]] * 2))
    assert s.layers == ("v", "past") and s.conditioned == ("past",)
    assert s.log_jacobian == pytest.approx(np.log(s.scale["v"]).sum())  # the past is conditioned on
    windows = s.apply(c.windows(SEQUENCES))  # windows of standardised frames: standardise, then cut
    cut = c.windows(s.apply({"v": SEQUENCES})["v"])
    for layer in ("v", "past"):
        np.testing.assert_allclose(windows[layer], cut[layer])
    from_windows = standardize.fit(c, c.windows(SEQUENCES))  # fitted on windows: the frames after the first two
    np.testing.assert_array_equal(from_windows.mean["past"][1], from_windows.mean["v"])
    with pytest.raises(DSLError, match="not a sequence model"):
        standardize.fit_frames(pgmdsl.load("gbrbm", nv=2, nh=2).compile(), SEQUENCES)


def test_standardized_shapes_and_conditioned_layers():
    assert standardize.standardized_shapes(pgmdsl.load("crbm", nv=2, nh=3, order=2)) == {"v": (2,), "past": (2, 2)}
    assert standardize.standardized_shapes(crbm()) == {"v": (2,), "past": (2, 2)}
    assert standardize.standardized_shapes(pgmdsl.load("rbm")) == {}
    assert standardize.standardized_shapes(pgmdsl.load("structured_crbm")) == {}  # binary outputs, a unitless input
    assert standardize.conditioned_layers(crbm(), ["v", "past"]) == ("past",)


def test_frames_mismatch_names_what_is_inconsistent():
    c = crbm()
    s = standardize.fit_frames(c, SEQUENCES)
    assert standardize.frames_mismatch(s, c.model) is None
    assert standardize.frames_mismatch(None, c.model) is None
    assert standardize.frames_mismatch(s, pgmdsl.load("rbm")) is None  # not a sequence model
    shifted = standardize.Standardization({**s.mean, "past": s.mean["past"] + 1}, s.scale, s.conditioned)
    assert "its mean of layer 'past' is not the mean of frame layer 'v'" in standardize.frames_mismatch(shifted, c)
    alone = standardize.Standardization({"v": s.mean["v"]}, {"v": s.scale["v"]})
    assert "standardises layer 'v' but not 'past'" in standardize.frames_mismatch(alone, c)




def test_a_sequence_models_standardisation_round_trips_and_damage_is_one_line(tmp_path):
    c = crbm()
    c.standardization = standardize.fit_frames(c, SEQUENCES)
    path = c.save(tmp_path / "model.npz")
    loaded = load_trained(path).standardization
    assert loaded.conditioned == ("past",) and loaded.log_jacobian == pytest.approx(c.standardization.log_jacobian)
    np.testing.assert_array_equal(loaded.scale["past"], c.standardization.scale["past"])

    def shift(contents):
        contents["standardize/mean/past"] = contents["standardize/mean/past"] + 1

    rewrite(path, shift)
    with pytest.raises(DSLError, match="does not fit sequence model crbm: its mean of layer 'past'") as error:
        load_trained(path)
    assert "\n" not in str(error.value)
    c.save(path)
    rewrite(path, lambda contents: (contents.pop("standardize/mean/past"), contents.pop("standardize/scale/past")))
    with pytest.raises(DSLError, match="standardises layer 'v' but not 'past'"):
        load_trained(path)
