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
    ("conv_rbm", {}, 64, "no single size can be solved from the data: set C or NV with --set"),
    ("conv_rbm", {"C": 1}, 64, "(NV=8 would fit but: size 'NH' must be a positive integer, got 0)"),
    ("class_rbm", {}, 64, "observes 2 layers (x, y)"),
    ("dbn", {}, 64, "is a stack"),
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


def test_save_pictures_without_matplotlib(trained, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert runs.save_pictures(trained, trained.history, tmp_path) == (
        [], ["no pictures: matplotlib is not installed (pip install 'pgmdsl[plot]')"])
