"""Every standard-library model parses, checks, and gives the expected graph and schedule."""

import networkx as nx
import pytest

import pgmdsl
from pgmdsl import resources

LIBRARY = ["rbm", "gbrbm", "mcrbm", "conv_rbm", "conv_dbn", "bm", "dbm", "dbm3", "dbn", "class_rbm", "crbm", "relu_rbm", "structured_crbm"]


def blocks(model):
    return [set(step.layers) for step in model.schedule]


def test_library_lists_every_model():
    assert resources.standard_models() == sorted(LIBRARY)


@pytest.mark.parametrize("name", LIBRARY)
def test_every_model_loads_and_cites_its_source(name):
    model = pgmdsl.load(name)
    text = (resources.models_dir() / f"{name}.dgm").read_text()
    assert text.startswith("#") and "Source:" in text.split("model")[0]
    assert isinstance(model.graph, nx.Graph) and model.graph.number_of_nodes() > 0
    assert model.summary().startswith(f"model {name}(")


def test_rbm_schedule_and_graph():
    model = pgmdsl.load("rbm")
    assert blocks(model) == [{"v"}, {"h"}]
    assert all(step.update(layer) == "block" for step in model.schedule for layer in step.layers)
    interaction = model.graph.nodes[("term", "v_W_h")]
    assert interaction["params"] == ("W",)
    assert set(model.graph.neighbors(("term", "v_W_h"))) == {("layer", "v"), ("layer", "h")}
    assert set(model.graph.neighbors(("term", "a_v"))) == {("layer", "v")}


def test_dbm_samples_v_with_h2():
    assert blocks(pgmdsl.load("dbm")) == [{"v", "h2"}, {"h1"}]


def test_bm_layers_are_updated_unit_by_unit():
    model = pgmdsl.load("bm")
    assert blocks(model) == [{"v"}, {"h"}]
    assert [step.update(step.layers[0]) for step in model.schedule] == ["unitwise", "unitwise"]
    assert model.interactions.nodes["v"]["self_coupled"]


def test_class_rbm_samples_inputs_and_labels_together():
    model = pgmdsl.load("class_rbm")
    assert blocks(model) == [{"x", "y"}, {"h"}]
    assert model.layer("y").unit == "onehot"


def test_crbm_never_samples_the_past():
    model = pgmdsl.load("crbm")
    assert blocks(model) == [{"v"}, {"h"}]
    assert model.layer("past").role == "input" and not model.layer("past").sampled
    assert ("layer", "past") in model.graph  # observed, but part of the factor graph
    assert "past" not in model.interactions


def test_conv_rbm_recognises_pooled_blocks():
    model = pgmdsl.load("conv_rbm", NV=8, NW=3, K=2, pool=2)
    h = model.layer("h")
    assert h.pooling.block == (2, 2) and h.pooling.into == "p"
    assert model.layer("p").shape == (2, 3, 3) and model.layer("p").pooled_from == "h"
    assert model.schedule[1].update("h") == "pooled"
    assert model.sizes["NH"] == 6


def test_mcrbm_visible_layer_is_drawn_jointly():
    model = pgmdsl.load("mcrbm")
    assert blocks(model) == [{"x"}, {"hm", "hc"}]
    assert model.schedule[0].update("x") == "joint"


def test_gbrbm_containment_does_not_couple_units():
    model = pgmdsl.load("gbrbm")
    assert model.schedule[0].update("v") == "block"


def test_dbn_is_a_stack_of_rbms_that_meet():
    model = pgmdsl.load("dbn", nv=20, n1=10, n2=8, n3=6)
    assert [entry.name for entry in model.stack] == ["rbm", "rbm", "rbm"]
    assert [entry.sizes for entry in model.stack] == [
        {"nv": 20, "nh": 10}, {"nv": 10, "nh": 8}, {"nv": 8, "nh": 6}
    ]
    assert model.schedule == ()
    levels = {d["name"] for _, d in model.graph.nodes(data=True) if d["kind"] == "layer"}
    assert levels == {"v", "h1", "h2", "h3"}
    directed = {d["name"]: d["directed"] for _, d in model.graph.nodes(data=True) if d["kind"] == "term"}
    assert directed["rbm3.v_W_h"] is False and directed["rbm1.v_W_h"] is True


def test_size_overrides_and_defaults():
    model = pgmdsl.load("rbm", nv=6)
    assert model.sizes == {"nv": 6, "nh": 500}
    assert model.param("W").shape == (6, 500)
    assert model.param("W").size == 3000


def test_terms_from_the_library_expand_with_their_arguments():
    model = pgmdsl.load("bm")
    lateral = next(t for t in model.terms if t.name == "visible_lateral")
    assert lateral.via == "lateral"
    assert str(lateral) == "-v[i]*L[i, k]*v[k]/2"
