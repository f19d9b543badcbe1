"""The steps of a training run: sizing a model to its data, the split, metrics files, samples, pictures."""

import csv
import json
import sys

import numpy as np
import pytest

import pgmdsl
from pgmdsl import runs
from pgmdsl.errors import DSLError


def test_fit_visible_solves_the_one_free_size():
    model, note = runs.fit_visible("rbm", {"nh": 5}, 64)
    assert model.arguments == {"nv": 64, "nh": 5} and note == "set nv=64 from the data (64 values per row)"
    model, note = runs.fit_visible("rbm", {"nv": 64}, 64)
    assert note is None and model.arguments["nv"] == 64
    model, note = runs.fit_visible("conv_rbm", {"C": 1, "NW": 5, "K": 2}, 100)  # an image side: 10 x 10
    assert model.arguments["NV"] == 10 and note == "set NV=10 from the data (100 values per row)"


@pytest.mark.parametrize("name, sizes, columns, message", [
    ("rbm", {"nv": 20}, 16, "has 20 units (--set nv=20); change or drop that setting"),
    ("conv_rbm", {}, 64, "(NV=8 would fit but: size 'NH' must be a positive integer, got 0 (from NV=8, NW=9)): "
                         "set C or NV with --set, and change the sizes the failure names to fit"),
    ("conv_rbm", {"C": 1}, 64, "(NV=8 would fit but: size 'NH' must be a positive integer, got 0 (from NV=8, NW=9))"),
    ("class_rbm", {}, 64, "observes 2 layers (x, y)"),
    ("dbn", {"nv": 10}, 64, "has 10 units (--set nv=10); change or drop that setting"),
])
def test_fit_visible_errors(name, sizes, columns, message):
    with pytest.raises(DSLError) as error:
        runs.fit_visible(name, sizes, columns)
    assert message in str(error.value)


def test_split_is_seeded_and_disjoint():
    data = np.arange(40.0).reshape(20, 2)
    train, held = runs.split(data, 0.25, seed=3)
    assert len(train) == 15 and len(held) == 5
    assert sorted(np.concatenate([train, held])[:, 0].tolist()) == data[:, 0].tolist()
    again = runs.split(data, 0.25, seed=3)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], held)
    assert not np.array_equal(runs.split(data, 0.25, seed=4)[1], held)
    train, held = runs.split(data, 0.0)
    assert train is data and held is None
    for bad in (-0.1, 1.0):
        with pytest.raises(DSLError, match="validation-fraction"):
            runs.split(data, bad)
    with pytest.raises(DSLError, match="leaves none to train on"):
        runs.split(data[:1], 0.9)


def test_row_count_of_an_array_a_dict_and_nothing():
    assert runs.row_count(np.zeros((7, 2))) == 7
    assert runs.row_count({"x": np.zeros((5, 3)), "y": np.zeros((5, 2))}) == 5
    assert runs.row_count(None) == 0


def test_split_of_a_dict_keeps_its_rows_together():
    data = {"x": np.arange(40.0).reshape(20, 2), "y": np.arange(20.0)}
    train, held = runs.split(data, 0.25, seed=3)
    assert len(train["x"]) == len(train["y"]) == 15 and len(held["x"]) == len(held["y"]) == 5
    np.testing.assert_array_equal(train["x"][:, 0] / 2, train["y"])
    np.testing.assert_array_equal(held["x"][:, 0] / 2, held["y"])
    np.testing.assert_array_equal(held["y"], runs.split(data["y"][:, None], 0.25, seed=3)[1][:, 0])


def test_fit_visible_with_labels_sizes_the_other_observed_layer():
    model, note = runs.fit_visible("class_rbm", {"ny": 3}, 16, labels="y")
    assert model.layer("x").size == 16 and note == "set nx=16 from the data (16 values per row)"
    assert runs.label_layer(model, "y").shape == (3,)
    with pytest.raises(DSLError, match="'x' is a visible binary layer"):
        runs.fit_visible("class_rbm", {}, 16, labels="x")
    with pytest.raises(DSLError, match="observes 2 layers \\(past, v\\)"):
        runs.fit_visible("crbm", {}, 16)


def test_write_metrics(tmp_path):
    history = [{"epoch": 1, "reconstruction": 0.5}, {"epoch": 2, "reconstruction": 0.25, "free_energy_gap": 0.1}]
    table, document = runs.write_metrics(history, tmp_path, {"model": "rbm"})
    with open(table, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [r["reconstruction"] for r in rows] == ["0.5", "0.25"] and rows[0]["free_energy_gap"] == ""
    assert json.loads(document.read_text()) == {"model": "rbm", "history": history}


@pytest.fixture(scope="module")
def trained():
    compiled = pgmdsl.load("rbm", nv=16, nh=6).compile(dtype="float64")
    data = pgmdsl.datasets.bars_and_stripes()
    compiled.fit(data[:28], epochs=2, batch_size=4, validation=data[28:], verbose=0)
    return compiled


def test_visible_samples(trained):
    draws = runs.visible_samples(trained, 5, steps=3, seed=1)
    assert draws.shape == (5, 16) and set(np.unique(draws)) <= {0.0, 1.0}
    assert np.array_equal(draws, runs.visible_samples(trained, 5, steps=3, seed=1))
    means = runs.visible_samples(trained, 5, steps=3, seed=1, means=True)
    assert np.all((means > 0) & (means < 1))
    class_rbm = pgmdsl.load("class_rbm", nx=4, ny=2, nh=3).compile()
    with pytest.raises(DSLError, match="2 visible layers"):
        runs.visible_samples(class_rbm, 2, steps=1)
    labels = runs.visible_samples(class_rbm, 6, steps=2, layer="y")  # one of several, by name: one-hot rows
    assert labels.shape == (6, 2) and np.array_equal(labels.sum(1), np.ones(6))
    with pytest.raises(DSLError, match="no visible layer 'h'"):
        runs.visible_samples(class_rbm, 2, steps=1, layer="h")
    with pytest.raises(DSLError, match="conditioned on past"):
        runs.visible_samples(pgmdsl.load("crbm", nv=3, nh=2, order=1).compile(), 2, steps=1)


def test_save_pictures(trained, tmp_path):
    pytest.importorskip("matplotlib")
    written, notes = runs.save_pictures(trained, trained.history, tmp_path, steps=5)
    assert [p.name for p in written] == ["weights.png", "samples.png", "curves.png"] and notes == []
    flat = pgmdsl.load("rbm", nv=10, nh=2).compile()
    written, notes = runs.save_pictures(flat, [{"epoch": 1, "reconstruction": 0.1}], tmp_path, steps=1)
    assert [p.name for p in written] == ["curves.png"]
    assert notes == ["no weights.png: its visible layer is not an image", "no samples.png: the visible layer is not an image"]


def test_save_pictures_with_the_training_rows_draws_the_hidden_activations(trained, tmp_path):
    pytest.importorskip("matplotlib")
    rows = {"v": pgmdsl.datasets.bars_and_stripes()[:28]}
    written, _ = runs.save_pictures(trained, trained.history, tmp_path, steps=1, rows=rows)
    assert [p.name for p in written] == ["weights.png", "samples.png", "activations.png", "curves.png"]
    assert (tmp_path / "activations.png").read_bytes()[:4] == b"\x89PNG"


def test_save_pictures_without_matplotlib(trained, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert runs.save_pictures(trained, trained.history, tmp_path) == (
        [], ["no pictures: matplotlib is not installed (pip install 'pgmdsl[plot]')"])


# ---- evidence: clamped layers and inpainting ----

def test_visible_samples_with_clamped_layers(trained):
    hidden = np.eye(6)[:2]
    means = runs.visible_samples(trained, 2, steps=1, means=True, clamp={"h": hidden})
    expected = 1 / (1 + np.exp(-(np.asarray(trained.params["a"]) + hidden @ np.asarray(trained.params["W"]).T)))
    np.testing.assert_allclose(means, expected, rtol=1e-6)  # p(v | h) for the clamped h
    class_rbm = pgmdsl.load("class_rbm", nx=4, ny=2, nh=3).compile()
    pixels = runs.visible_samples(class_rbm, 3, steps=2, clamp={"y": np.eye(2)[[0, 1, 1]]})  # x given the labels
    assert pixels.shape == (3, 4)
    with pytest.raises(DSLError, match="clamping v leaves no visible layer of rbm to sample"):
        runs.visible_samples(trained, 2, steps=1, clamp={"v": np.zeros((2, 16))})
    with pytest.raises(DSLError, match="layer 'y' of class_rbm is clamped"):
        runs.visible_samples(class_rbm, 3, steps=1, layer="y", clamp={"y": np.eye(2)[[0, 1, 1]]})
    crbm = pgmdsl.load("crbm", nv=3, nh=2, order=1).compile()
    assert runs.visible_samples(crbm, 2, steps=1, clamp={"past": np.zeros((2, 1, 3))}).shape == (2, 3)


def test_clamp_rows_takes_one_row_or_rows_flat_or_shaped():
    conv = pgmdsl.load("conv_rbm", NV=4, NW=3, K=2).compile()  # v[1, 4, 4]
    assert runs.clamp_rows(conv, "v", np.zeros(16)).shape == (1, 1, 4, 4)
    assert runs.clamp_rows(conv, "v", np.zeros((1, 4, 4))).shape == (1, 1, 4, 4)
    assert runs.clamp_rows(conv, "v", np.zeros((3, 16))).shape == (3, 1, 4, 4)
    assert runs.clamp_rows(conv, "v", np.zeros((3, 1, 4, 4))).shape == (3, 1, 4, 4)
    with pytest.raises(DSLError, match=r"^error: --clamp v: an array of shape \(3, 15\); the layer takes one row"):
        runs.clamp_rows(conv, "v", np.zeros((3, 15)))
    with pytest.raises(DSLError, match="layer 'v' has binary units, which take values in \\[0, 1\\]"):
        runs.clamp_rows(conv, "v", np.full(16, 2.0))
    with pytest.raises(DSLError, match="--clamp z: model conv_rbm has no such layer"):
        runs.clamp_rows(conv, "z", np.zeros(16))
    crbm = pgmdsl.load("crbm", nv=2, nh=2, order=2).compile()
    with pytest.raises(DSLError, match="--clamp past: the rows contain NaN"):
        runs.clamp_rows(crbm, "past", np.full((2, 2), np.nan))
    np.testing.assert_array_equal(runs.layer_rows(crbm, "past", np.arange(4.0), "x"), [[[0, 1], [2, 3]]])


def test_rows_for_reconciles_the_rows_given_with_n():
    assert runs.rows_for(1, None, "--clamp") == 64
    assert runs.rows_for(5, None, "--clamp") == 5
    assert runs.rows_for(1, 9, "--clamp") == 9 and runs.rows_for(5, 5, "--clamp") == 5
    with pytest.raises(DSLError, match="--clamp holds 5 rows and -n is 9: give one row \\(repeated\\) or -n 5"):
        runs.rows_for(5, 9, "--clamp")


def test_inpaint_layer_picks_the_visible_layer():
    assert runs.inpaint_layer(pgmdsl.load("rbm", nv=4, nh=2).compile()) == "v"
    class_rbm = pgmdsl.load("class_rbm", nx=16, ny=3, nh=2).compile()
    assert runs.inpaint_layer(class_rbm) == "x" and runs.inpaint_layer(class_rbm, "y") == "y"
    with pytest.raises(DSLError, match="has no such visible layer"):
        runs.inpaint_layer(class_rbm, "h")
    with pytest.raises(DSLError, match="visible layers x, y: name one"):
        runs.inpaint_layer(pgmdsl.load("class_rbm", nx=10, ny=3, nh=2).compile())  # no image among them
    with pytest.raises(DSLError, match="conditioned on past; inpainting takes a model without input layers"):
        runs.inpaint_layer(pgmdsl.load("crbm", nv=2, nh=2, order=1).compile())


def test_known_mask_is_boolean_like_and_shaped_as_the_rows():
    rows = np.zeros((3, 4))
    assert runs.known_mask(np.array([True, False, True, False]), rows).shape == (3, 4)  # one row for all
    np.testing.assert_array_equal(runs.known_mask(np.eye(4)[:3].astype(np.uint8), rows), np.eye(4)[:3] == 1)
    assert runs.known_mask(np.ones((3, 4)), rows).all()
    for mask, message in [(np.full(4, 0.5), "holds 0.5; a mask is boolean"),
                          (np.array(["yes"] * 4), "holds <U3 values"),
                          (np.ones((3, 5)), r"an array of shape \(3, 5\); it must match the rows \(\(3, 4\)\)"),
                          (np.ones((2, 4)), "2 rows of mask for 3 rows of values")]:
        with pytest.raises(DSLError, match=message):
            runs.known_mask(mask, rows)


def test_inpaint_keeps_the_known_units_and_ignores_the_unknown_values(trained):
    images = pgmdsl.datasets.bars_and_stripes()[[1, 20]]
    known = np.zeros((2, 16), bool)
    known[:, :8] = True
    values = np.where(known, images, np.nan)  # what the unknown units hold does not matter
    result = runs.inpaint(trained, "v", values, known, steps=5, seed=2)
    np.testing.assert_array_equal(result[known], images[known])
    assert set(np.unique(result)) <= {0.0, 1.0}
    np.testing.assert_array_equal(result, runs.inpaint(trained, "v", values, known, steps=5, seed=2))
    with pytest.raises(DSLError, match="binary units"):
        runs.inpaint(trained, "v", np.where(known, 3.0, 0.0), known, steps=1)


def test_inpaint_answers_in_the_data_units():
    from pgmdsl.runtime import standardize

    rows = np.random.default_rng(0).normal([100.0, -3.0], [10.0, 0.1], size=(50, 2))
    model = pgmdsl.load("gbrbm", nv=2, nh=2).compile(dtype="float64")
    model.standardization = standardize.fit(model, {"v": rows})
    known = np.array([[True, False]] * 3)
    result = runs.inpaint(model, "v", rows[:3], known, steps=20)
    np.testing.assert_array_equal(result[:, 0], rows[:3, 0])
    assert np.all(np.abs(result[:, 1] + 3) < 2)  # around the data's -3, not the standardised 0
