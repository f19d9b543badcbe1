"""Pictures of a run: which layers are images, weight tiles, and PNGs written without pyplot."""

import sys

import numpy as np
import pytest

import pgmdsl
from pgmdsl import plots, resources

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def rbm():
    return pgmdsl.load("rbm", nv=64, nh=6).compile(dtype="float64")


def test_have_matplotlib(monkeypatch):
    try:
        import matplotlib  # noqa: F401
        present = True
    except ImportError:
        present = False
    assert plots.have_matplotlib() is present
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert plots.have_matplotlib() is False


def test_visible_image(rbm):
    assert plots.visible_image(rbm) == ("v", (8, 8))
    conv = pgmdsl.load("conv_rbm", NV=8, NW=5, K=2).compile()
    assert plots.visible_image(conv) == ("v", (8, 8))
    assert plots.visible_image(pgmdsl.load("rbm", nv=10, nh=2).compile()) is None  # not a square
    # several visible layers: the one image among them (a classification RBM's pixels, not its 3 labels)
    class_rbm = pgmdsl.load("class_rbm", nx=16, ny=3, nh=4).compile()
    assert plots.visible_image(class_rbm) == ("x", (4, 4))
    np.testing.assert_array_equal(plots.weight_tiles(class_rbm).reshape(4, 16), np.asarray(class_rbm.params["W"]).T)
    assert plots.visible_image(pgmdsl.load("class_rbm", nx=16, ny=4, nh=4).compile()) == ("x", (4, 4))  # y: labels
    two = pgmdsl.parse("model two(n: int = 9)\nvisible a[n]: binary\nvisible b[n]: binary\nhidden h[n]: binary\n"
                       "param W[n, n] ~ normal(0, 1)\nparam U[n, n] ~ normal(0, 1)\n"
                       "energy = -a[i]*W[i,j]*h[j] - b[i]*U[i,j]*h[j]", filename="two.dgm").compile()
    assert plots.visible_image(two) is None  # two 3x3 images: which one?


def test_weight_tiles(rbm):
    tiles = plots.weight_tiles(rbm)
    assert tiles.shape == (6, 8, 8)
    assert np.array_equal(tiles[2].ravel(), np.asarray(rbm.params["W"])[:, 2])
    conv = pgmdsl.load("conv_rbm", NV=8, NW=5, K=3).compile()
    assert plots.weight_tiles(conv).shape == (3, 5, 5)
    dbm = pgmdsl.load("dbm", nv=16, n1=4, n2=16).compile()  # W1 joins v to h1; W2 (4 x 16) is not v's
    assert np.array_equal(plots.weight_tiles(dbm).reshape(4, 16), np.asarray(dbm.params["W1"]).T)
    assert plots.weight_tiles(pgmdsl.load("rbm", nv=10, nh=2).compile()) is None


def test_save_tiles(tmp_path):
    pytest.importorskip("matplotlib")
    images = np.random.default_rng(0).random((150, 4, 4))
    path = plots.save_tiles(images, tmp_path / "tiles.png", "noise", limit=120, scale_each=True)
    assert path == tmp_path / "tiles.png" and path.read_bytes()[:8] == PNG
    plots.save_tiles(images[:3] * 5 - 2, tmp_path / "wide.png")  # values outside [0, 1] share one scale
    assert (tmp_path / "wide.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="shape"):
        plots.save_tiles(np.ones((4, 16)), tmp_path / "flat.png")


def test_save_curves(tmp_path):
    pytest.importorskip("matplotlib")
    history = [{"epoch": 1, "reconstruction": 0.2, "free_energy_gap": 0.1}, {"epoch": 2, "reconstruction": 0.1,
                                                                             "free_energy_gap": -0.2}]
    assert plots.save_curves(history, tmp_path / "c.png", "t").read_bytes()[:8] == PNG
    assert plots.save_curves([{"epoch": 1, "reconstruction": 0.3}], tmp_path / "r.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="empty"):
        plots.save_curves([], tmp_path / "e.png")


def test_pictures_leave_the_pyplot_backend_alone(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    before = matplotlib.get_backend()
    plots.save_tiles(np.zeros((1, 2, 2)), tmp_path / "z.png")
    assert matplotlib.get_backend() == before


def test_a_sequence_models_flat_frame_is_not_an_image():
    assert plots.visible_image(pgmdsl.load("crbm", nv=16, nh=2, order=1).compile()) is None  # 16 channels, not 4x4


def test_save_pairs(tmp_path):
    pytest.importorskip("matplotlib")
    right = np.random.default_rng(0).random((5, 4, 4))
    left = np.where(right > 0.5, right, np.nan)  # NaN: the units that were sampled, drawn grey
    assert plots.save_pairs(left, right, tmp_path / "p.png", "pairs", limit=3).read_bytes()[:8] == PNG
    assert plots.save_pairs(np.full((1, 2, 2), np.nan), right[:1, :2, :2] * 9, tmp_path / "q.png").is_file()
    with pytest.raises(ValueError, match="two arrays of one shape"):
        plots.save_pairs(left, right[:2], tmp_path / "bad.png")


def test_save_channels(tmp_path):
    pytest.importorskip("matplotlib")
    frames = np.sin(np.arange(60)[:, None] / 5 + np.arange(20))  # 20 channels: the first 16 drawn
    assert plots.save_channels(frames, tmp_path / "c.png", "waves", seeded=3).read_bytes()[:8] == PNG
    assert plots.save_channels(np.zeros((5, 1)), tmp_path / "flat.png").is_file()  # a constant channel
    with pytest.raises(ValueError, match="frames of shape \\(T, channels\\)"):
        plots.save_channels(np.zeros(5), tmp_path / "bad.png")


def test_weights_draw_on_one_scale_centred_at_zero(tmp_path):
    """A diverging map from -m to m: a negative tile is blue, a positive one red, zero white, whatever the tile."""
    from matplotlib.image import imread

    images = np.stack([np.full((4, 4), -2.0), np.zeros((4, 4)), np.full((4, 4), 1.0)])
    picture = imread(plots.save_tiles(images, tmp_path / "w.png", "weights", diverging=True))
    tiles = picture[:, : int(picture.shape[1] * 0.7), :3].reshape(-1, 3)  # left of the colour bar
    blue = tiles[(tiles[:, 2] - tiles[:, 0]) > 0.2]  # -2: the end of the scale, dark blue
    red = tiles[(tiles[:, 0] - tiles[:, 2]) > 0.2]  # +1: half way to the red end, a light red
    assert len(blue) > 1000 and len(red) > 1000, "both signs drawn"
    assert abs(len(blue) - len(red)) < 0.2 * len(blue)  # tiles of one size
    assert blue.sum(1).mean() < red.sum(1).mean() - 0.5  # |-2| drawn stronger (darker) than |1|: one scale


def test_curves_have_a_panel_for_every_monitored_metric(tmp_path):
    from matplotlib.image import imread

    rows = [{"epoch": e, "reconstruction": 1.0 / e, "train_label_accuracy": 0.5 + e / 10,
             "validation_exact_log_likelihood": -10.0 + e} for e in (1, 2, 3)]
    plain = imread(plots.save_curves([{"epoch": r["epoch"], "reconstruction": r["reconstruction"]} for r in rows],
                                     tmp_path / "a.png"))
    monitored = imread(plots.save_curves(rows, tmp_path / "b.png"))
    assert monitored.shape[1] == 3 * plain.shape[1]


# ---- every picture of every standard-library model ----

def _library_model(name: str):
    """A standard-library model at its smallest sizes (exact.SMALLEST_SIZES; stacks at small sizes), compiled."""
    import exact

    sizes = {"dbn": dict(nv=4, n1=3, n2=2, n3=2), "conv_dbn": dict(NV=8, K1=2, NW1=3, K2=2, NW2=2)}
    return pgmdsl.load(name, **{**exact.SMALLEST_SIZES, **sizes}.get(name, {})).compile(dtype="float64")


def _rows(compiled, count: int = 30) -> dict:
    """Rows every observed layer can take: random states of their unit types (inputs standard normal)."""
    from pgmdsl.runtime.sampling import initial_state

    rng = np.random.default_rng(0)
    inputs = {name: rng.standard_normal((count,) + tuple(info["shape"]))
              for name, info in compiled.layers.items() if info["role"] == "input"}
    state = initial_state(compiled, count, rng, inputs)
    return {name: np.asarray(state[name]) for name, info in compiled.layers.items()
            if info["role"] in ("visible", "input")}


def _is_png(path) -> bool:
    return path.is_file() and path.stat().st_size > len(PNG) and path.read_bytes()[:8] == PNG


@pytest.mark.parametrize("name", resources.standard_models())
def test_every_picture_of_every_library_model(name, tmp_path):
    """The factor graph, the AIS weights (the stacks': their top level's) and the hidden activations (a stack's:
    its bottom level's) draw for every standard-library model, each a non-empty PNG."""
    pytest.importorskip("matplotlib")
    from pgmdsl.drawing import draw_png
    from pgmdsl.evaluate import ais

    c = _library_model(name)
    assert _is_png(draw_png(c.model, tmp_path / "graph.png"))
    single = c.levels[0] if isinstance(c, pgmdsl.CompiledStack) else c
    rows = _rows(single)
    given = {k: v for k, v in rows.items() if single.layers[k]["role"] == "input"}
    observed = {k: v for k, v in rows.items() if k not in given}
    estimate = ais(c, observed, runs=4, schedule=np.linspace(0, 1, 6), progress=False, inputs=given or None)
    assert _is_png(plots.save_ais_weights(estimate.log_weights, tmp_path / "ais.png", name))
    activations = plots.hidden_activations(single, rows)
    assert activations and all(np.all(np.isfinite(v)) for v in activations.values())
    assert _is_png(plots.save_activations(activations, tmp_path / "activations.png", name))


# ---- the factor graph, in layers ----

def test_layer_levels_put_the_observed_layers_at_the_bottom_and_a_stack_level_by_level():
    from pgmdsl.drawing import layer_levels

    assert layer_levels(pgmdsl.load("rbm")) == {"v": 0, "h": 1}
    assert layer_levels(pgmdsl.load("dbm")) == {"v": 0, "h1": 1, "h2": 2}
    assert layer_levels(pgmdsl.load("dbn")) == {"v": 0, "h1": 1, "h2": 2, "h3": 3}
    assert layer_levels(pgmdsl.load("crbm")) == {"past": 0, "v": 0, "h": 1}  # inputs are observed too
    assert layer_levels(pgmdsl.load("conv_dbn")) == {"v": 0, "d1": 1, "h1": 2, "d2": 3, "h2": 4}  # pooling above
    lonely = pgmdsl.parse("model lonely(n: int = 2)\nvisible v[n]: binary\nhidden h[n]: binary\nhidden g[n]: binary\n"
                          "param W[n, n] ~ normal(0, 1)\nparam c[n] = 0\n"
                          "energy = -v[i]*W[i,j]*h[j] - c[k]*g[k]", filename="lonely.dgm")
    assert layer_levels(lonely) == {"v": 0, "h": 1, "g": 2}  # joined to nothing observed: above the rest


def test_layered_positions_place_rows_and_factors_between_the_layers_they_join():
    from pgmdsl.drawing import layered_positions

    model = pgmdsl.load("class_rbm")
    at = layered_positions(model)
    assert set(at) == set(model.graph.nodes)
    assert at[("layer", "x")][1] == at[("layer", "y")][1] == 0 and at[("layer", "h")][1] == 1
    assert at[("layer", "x")][0] != at[("layer", "y")][0]  # side by side in their row
    assert at[("term", "input_hidden")] == pytest.approx(
        tuple(np.mean([at[("layer", "x")], at[("layer", "h")]], axis=0)))
    bias = at[("term", "hidden_bias")]  # a factor of one layer sits beside it
    assert bias[0] > at[("layer", "h")][0] and abs(bias[1] - 1) < 0.5
    points = list(at.values())
    assert len(set(points)) == len(points), "no two nodes at one place"


def test_the_dot_pins_every_node_at_its_layered_place():
    from pgmdsl.drawing import DOT_INCHES, layer_label, layered_positions, to_dot

    model = pgmdsl.load("dbm")
    dot = to_dot(model)
    x, y = layered_positions(model)[("layer", "h2")]
    assert f'"layer:h2" [label="h2\\nbinary [1000]", shape=circle, pos="{x * DOT_INCHES:.3f},{y * DOT_INCHES:.3f}!"];' \
        in dot
    assert dot.count("!\"]") == model.graph.number_of_nodes()
    assert layer_label(model.graph.nodes[("layer", "v")]) == "v\nbinary [784]"


def test_draw_png_leaves_the_pyplot_backend_alone(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    from pgmdsl.drawing import draw_png

    before = matplotlib.get_backend()
    assert _is_png(draw_png(pgmdsl.load("dbm"), tmp_path / "dbm.png"))
    assert matplotlib.get_backend() == before


def test_save_ais_weights_and_save_activations_refuse_what_they_cannot_draw(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="at least 2 finite log weights"):
        plots.save_ais_weights([1.0], tmp_path / "one.png")
    with pytest.raises(ValueError, match="at least 2 finite log weights"):
        plots.save_ais_weights([1.0, np.nan], tmp_path / "nan.png")
    with pytest.raises(ValueError, match="no hidden layer"):
        plots.save_activations({}, tmp_path / "none.png")


def test_hidden_activations_are_the_hidden_conditional_means(rbm):
    rows = np.random.default_rng(1).integers(0, 2, (5, 64)).astype(float)
    means = plots.hidden_activations(rbm, rows, rows=3)
    p = {k: np.asarray(v) for k, v in rbm.params.items()}
    expected = 1 / (1 + np.exp(-(rows[:3] @ p["W"] + p["b"])))
    np.testing.assert_allclose(means["h"], expected.ravel(), rtol=1e-10)
