"""Pictures of a run: which layers are images, weight tiles, and PNGs written without pyplot."""

import sys

import numpy as np
import pytest

import pgmdsl
from pgmdsl import plots

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
