"""Training: reproducible, resumable after SIGKILL, stops on divergence, every model trains."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import pgmdsl
from pgmdsl.errors import DSLError
from pgmdsl.runtime import checkpoint
from pgmdsl.runtime.train import TrainingDiverged

BARS = np.array([[1, 1, 0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 1, 1, 0, 0], [1, 0, 1, 0, 1, 0, 1, 0],
                 [0, 1, 0, 1, 0, 1, 0, 1]] * 8, dtype=float)


def rbm(nv=8, nh=4, dtype="float64"):
    return pgmdsl.load("rbm", nv=nv, nh=nh).compile(dtype=dtype)


def test_same_seed_gives_identical_parameters():
    first, second = rbm(), rbm()
    first.fit(BARS, epochs=3, batch_size=4, seed=7, verbose=0)
    second.fit(BARS, epochs=3, batch_size=4, seed=7, verbose=0)
    for name in first.params:
        np.testing.assert_array_equal(first.params[name], second.params[name])
    third = rbm()
    third.fit(BARS, epochs=3, batch_size=4, seed=8, verbose=0)
    assert not np.array_equal(first.params["W"], third.params["W"])


def test_training_improves_the_exact_log_likelihood():
    import itertools

    from scipy.special import logsumexp

    c = rbm(nh=4)

    def log_likelihood():
        W, a, b = (np.asarray(c.params[k]) for k in "Wab")
        H = np.array(list(itertools.product([0, 1], repeat=4)), float)
        log_z = logsumexp(H @ b + np.logaddexp(0, H @ W.T + a).sum(1))
        return float(-np.mean(c.free_energy({"v": BARS})) - log_z)

    before = log_likelihood()
    history = c.fit(BARS, epochs=100, batch_size=8, lr=0.5, k=1, verbose=0)
    assert log_likelihood() > before + 1.0
    assert len(history) == 100 and history[-1]["epoch"] == 100
    assert history.column("reconstruction")[-1] < history.column("reconstruction")[0]


SCRIPT = textwrap.dedent("""
    import sys, numpy as np, pgmdsl
    data = np.random.default_rng(0).integers(0, 2, (4000, 16)).astype(float)
    c = pgmdsl.load("rbm", nv=16, nh=8).compile(dtype="float64")
    c.fit(data, epochs=int(sys.argv[2]), batch_size=5, lr=0.05, momentum=0.5, method=sys.argv[3],
          seed=3, verbose=0, checkpoint=sys.argv[1], resume=sys.argv[1] if sys.argv[4] == "resume" else None)
    c.save(sys.argv[1] + ".final.npz")
""")


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_a_run_killed_mid_epoch_resumes_to_the_same_parameters(tmp_path, method):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PGMDSL_CACHE_DIR": str(tmp_path / "cache")}
    killed = tmp_path / "killed.npz"
    process = subprocess.Popen([sys.executable, str(script), str(killed), "30", method, "fresh"], env=env)
    deadline = time.time() + 120
    while not killed.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    time.sleep(0.15)  # into the next epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert killed.exists(), "no checkpoint was written before the kill"
    epoch = checkpoint.read(killed)["training"]["epoch"]
    assert 1 <= epoch < 30, f"killed after epoch {epoch}: the run was not interrupted mid-way"
    subprocess.run([sys.executable, str(script), str(killed), "30", method, "resume"], env=env, check=True)
    whole = tmp_path / "whole.npz"
    subprocess.run([sys.executable, str(script), str(whole), "30", method, "fresh"], env=env, check=True)
    resumed = checkpoint.read(str(killed) + ".final.npz")["params"]
    uninterrupted = checkpoint.read(str(whole) + ".final.npz")["params"]
    for name in uninterrupted:
        np.testing.assert_array_equal(resumed[name], uninterrupted[name])


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    c = rbm()
    path = tmp_path / "run.npz"
    c.fit(BARS, epochs=1, batch_size=4, verbose=0, checkpoint=path)
    good = {k: np.array(v) for k, v in c.params.items()}
    c.params["W"][...] = 1.7e308  # the next updates overflow
    with pytest.raises(TrainingDiverged, match=r"diverged in epoch 1 \(by update \d+\): \w+(, \w+)* became NaN or infinite; parameters restored"):
        c.fit(BARS, epochs=2, batch_size=4, lr=1e308, verbose=0, checkpoint=tmp_path / "other.npz")
    assert all(np.all(np.isfinite(v)) for v in c.params.values())
    saved = checkpoint.read(path)["params"]
    for name in good:
        np.testing.assert_array_equal(saved[name], good[name])


def test_options_are_validated():
    c = rbm()
    with pytest.raises(DSLError, match="fit: lr must be a positive number or a dict of parameter names to rates >= 0, got -1"):
        c.fit(BARS, lr=-1)
    with pytest.raises(DSLError, match="fit: unknown option learning_rate"):
        c.fit(BARS, learning_rate=0.1)
    with pytest.raises(DSLError, match="fit: method must be 'cd', 'pcd' or 'pt'"):
        c.fit(BARS, method="gd")
    with pytest.raises(DSLError, match=r"layer 'v' has shape \(8,\) per row"):
        c.fit(np.zeros((4, 5)))
    with pytest.raises(DSLError, match="contains NaN"):
        c.fit(np.full((4, 8), np.nan))


def test_sparsity_pulls_hidden_activity_towards_the_target():
    data = np.random.default_rng(0).integers(0, 2, (200, 8)).astype(float)
    free, sparse = rbm(nh=6), rbm(nh=6)
    free.fit(data, epochs=10, batch_size=20, verbose=0)
    sparse.fit(data, epochs=10, batch_size=20, verbose=0, sparsity_target=0.05, sparsity_cost=2.0)
    assert float(np.mean(sparse.transform(data))) < 0.2 < float(np.mean(free.transform(data)))


def test_learning_rate_schedules():
    c = rbm()
    history = c.fit(BARS, epochs=4, batch_size=32, lr=0.1, lr_schedule="linear", lr_min=0.0, verbose=0)
    rates = history.column("lr")
    assert rates[0] > rates[1] > rates[2] > rates[3] >= 0
    history = c.fit(BARS, epochs=3, batch_size=32, lr=0.1, lr_schedule="inverse", lr_decay=1.0, verbose=0)
    assert history.column("lr") == pytest.approx([0.1, 0.1 / 2, 0.1 / 3])


def test_save_and_load_trained_round_trip(tmp_path):
    c = rbm()
    c.fit(BARS, epochs=2, batch_size=8, verbose=0)
    path = c.save(tmp_path / "model.npz")
    back = pgmdsl.runtime.checkpoint.load_trained(path)
    np.testing.assert_array_equal(back.free_energy({"v": BARS}), c.free_energy({"v": BARS}))
    assert back.model.arguments == {"nv": 8, "nh": 4}


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"x": 1}], dtype=object), source=np.array("model m()"))
    with pytest.raises(DSLError, match="cannot read checkpoint"):
        checkpoint.read(path)


def test_sampling_clamps_and_inpaints():
    c = rbm()
    c.fit(BARS, epochs=20, batch_size=8, lr=0.1, verbose=0)
    state = c.sample(6, steps=20, clamp={"h": np.ones(4)})
    assert state["v"].shape == (6, 8) and np.all(state["h"] == 1)
    known = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    filled = c.inpaint("v", np.tile(BARS[0], (3, 1)), known, steps=10)
    np.testing.assert_array_equal(filled[:, :4], np.tile(BARS[0, :4], (3, 1)))
    assert c.transform(BARS).shape == (32, 4) and c.reconstruct(BARS).shape == (32, 8)


TINY = {
    "rbm": dict(nv=6, nh=3),
    "gbrbm": dict(nv=4, nh=3),
    "mcrbm": dict(nv=4, nm=2, nc=3),
    "conv_rbm": dict(C=1, NV=6, K=2, NW=3, pool=2),
    "bm": dict(n=4, nh=3),
    "dbm": dict(nv=6, n1=4, n2=3),
    "class_rbm": dict(nx=5, ny=3, nh=4),
    "crbm": dict(nv=3, nh=4, order=2),
}


def tiny_data(c, rows, rng):
    data = {}
    for name, info in c.layers.items():
        if info["role"] not in ("visible", "input"):
            continue
        shape = (rows,) + tuple(info["shape"])
        if info["unit"] in ("gaussian", None):
            data[name] = rng.normal(size=shape)
        elif info["unit"] == "onehot":
            data[name] = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
        else:
            data[name] = rng.integers(0, 2, shape).astype(float)
    return data


@pytest.mark.parametrize("name", list(TINY) + ["dbn"])
@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_every_library_model_trains_and_samples(name, method):
    if name == "dbn":
        return check_dbn(method)
    c = pgmdsl.load(name, **TINY[name]).compile(dtype="float64")
    rng = np.random.default_rng(0)
    data = tiny_data(c, 20, rng)
    before = {k: np.array(v) for k, v in c.params.items()}
    history = c.fit(data, method=method, epochs=2, batch_size=5, lr=0.01, verbose=0)
    assert len(history) == 2
    assert all(np.all(np.isfinite(v)) for v in c.params.values())
    assert any(not np.array_equal(before[k], c.params[k]) for k in before)
    inputs = {k: v[:3] for k, v in data.items() if c.layers[k]["role"] == "input"}
    state = c.sample(3, steps=5, clamp=inputs)
    for layer, info in c.layers.items():
        if info["role"] in ("visible", "hidden"):
            assert state[layer].shape == (3,) + tuple(info["shape"])


def check_dbn(method):
    stack = pgmdsl.load("dbn", nv=8, n1=6, n2=5, n3=4).compile(dtype="float64")
    histories = stack.fit(BARS, method=method, epochs=2, batch_size=8, lr=0.05, verbose=0)
    assert [len(h) for h in histories] == [2, 2, 2]
    assert stack.transform(BARS).shape == (32, 4)
    samples = np.asarray(stack.sample(3, steps=5))
    assert samples.shape == (3, 8) and np.all((samples >= 0) & (samples <= 1))


def test_checkpoints_are_ordinary_files(tmp_path):
    import stat

    c = rbm()
    path = c.save(tmp_path / "model.npz")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("path", ["generic", "fused"])
@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_one_update_equals_a_hand_written_step(method, path):
    """The trainer's CD-1 / PCD-1 update against the textbook step with the same random stream.

    PCD as BernoulliRBM: the chains keep hidden units; the update draws the
    visible units from them, takes both phases' hidden means, then draws the
    chains' next hidden units from the model rows' means.
    """
    from pgmdsl.runtime.train import Trainer

    c = rbm(nv=8, nh=5)
    rng = np.random.default_rng(4)
    for name in c.params:
        c.params[name] = rng.normal(0, 0.5, c.params[name].shape)
    W, a, b = (np.array(c.params[k]) for k in "Wab")
    v0, lr = BARS[:4], 0.1
    chains = (rng.random((4, 5)) < 0.5).astype(float)
    trainer = Trainer(c, v0, method=method, batch_size=4, lr=lr, verbose=0, seed=0)
    trainer.chains = {"h": chains.copy()} if method == "pcd" else None
    trainer.sampler = np.random.default_rng(9)
    if path == "fused":
        trainer.fused.load(c.params, trainer.velocity, trainer.chains)
        trainer.fused.update(v0, lr, trainer.sampler)
        trainer.chains = trainer.fused.store(c.params, trainer.velocity)
    else:
        trainer.update({"v": v0}, lr)

    draws = np.random.default_rng(9)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    h0 = sigmoid(v0 @ W + b)
    hs = chains if method == "pcd" else (draws.random((4, 5)) < h0).astype(float)
    vk = (draws.random((4, 8)) < sigmoid(hs @ W.T + a)).astype(float)
    hk = sigmoid(vk @ W + b)
    np.testing.assert_allclose(c.params["W"], W + lr * (v0.T @ h0 - vk.T @ hk) / 4, atol=1e-12)
    np.testing.assert_allclose(c.params["a"], a + lr * (v0 - vk).mean(0), atol=1e-12)
    np.testing.assert_allclose(c.params["b"], b + lr * (h0 - hk).mean(0), atol=1e-12)
    if method == "pcd":
        np.testing.assert_array_equal(trainer.chains["h"], (draws.random((4, 5)) < hk).astype(float))


def _small_rbm():
    return pgmdsl.load("rbm", nv=6, nh=4).compile(seed=2, dtype="float64")


def _rows():
    return (np.random.default_rng(1).random((30, 6)) < 0.4).astype(float)


def test_per_parameter_rates_equal_to_one_rate_train_alike():
    one, each = _small_rbm(), _small_rbm()
    one.fit(_rows(), epochs=2, lr=0.1, fused=False, seed=4, momentum=0.5, weight_decay=0.01)
    each.fit(_rows(), epochs=2, lr={"W": 0.1, "a": 0.1, "b": 0.1}, seed=4, momentum=0.5, weight_decay=0.01)
    for name, value in one.params.items():
        np.testing.assert_allclose(each.params[name], value, rtol=1e-12, atol=1e-15)


def test_a_rate_of_zero_freezes_a_parameter_and_rates_scale_steps():
    frozen, before = _small_rbm(), _small_rbm()
    frozen.fit(_rows(), epochs=1, lr={"W": 0.1, "a": 0.1, "b": 0.0}, seed=4)
    np.testing.assert_array_equal(frozen.params["b"], before.params["b"])  # b = 0 (a starts from the data)
    assert not np.array_equal(frozen.params["W"], before.params["W"])
    double, single = _small_rbm(), _small_rbm()  # one update from the same start: a step twice as long
    double.fit(_rows()[:10], epochs=1, batch_size=10, lr={"W": 0.2, "a": 0.1, "b": 0.1}, seed=4)
    single.fit(_rows()[:10], epochs=1, batch_size=10, lr=0.1, fused=False, seed=4)
    np.testing.assert_allclose(double.params["W"] - before.params["W"], 2 * (single.params["W"] - before.params["W"]))
    np.testing.assert_allclose(double.params["a"], single.params["a"])


@pytest.mark.parametrize("lr, message", [
    ({"W": 0.1, "a": 0.1}, "gives no rate for b"),
    ({"W": 0.1, "a": 0.1, "b": 0.1, "c": 1.0}, "names no parameter c"),
    ({"W": -1.0, "a": 0.1, "b": 0.1}, "lr must be"),
    ({"W": 0.0, "a": 0.0, "b": 0.0}, "lr must be"),
])
def test_bad_per_parameter_rates_are_one_error(lr, message):
    with pytest.raises(pgmdsl.DSLError, match=message):
        _small_rbm().fit(_rows(), epochs=1, lr=lr)


def test_the_cli_takes_one_rate_per_parameter(tmp_path, capsys):
    from pgmdsl.cli import main

    assert main(["train", "rbm", "--data", "bars", "--set", "nh=4", "--epochs", "1", "--ais-runs", "0",
                 "--lr", "W=0.1,a=0.1,b=0", "-o", str(tmp_path / "run")]) == 0
    trained = pgmdsl.load_trained(tmp_path / "run" / "model.npz")
    np.testing.assert_array_equal(trained.params["b"], np.zeros(4))  # frozen at its initial value
    with pytest.raises(SystemExit) as usage:  # a name twice is a usage error, as argparse reports them
        main(["train", "rbm", "--data", "bars", "--lr", "W=0.1,W=1", "-o", str(tmp_path / "bad")])
    assert usage.value.code == 2


def _stop_after(epoch: int, how: str):
    """A callback that asks to stop once `epoch` is done: by returning False, or by raising StopTraining."""
    def callback(compiled, row):
        if row["epoch"] >= epoch:
            if how == "raise":
                raise pgmdsl.StopTraining
            return False
        return None

    return callback


@pytest.mark.parametrize("how", ["return", "raise"])
def test_a_callback_stops_training_after_its_epoch_and_the_run_resumes_from_there(tmp_path, how):
    path = tmp_path / "stopped.npz"
    data = np.random.default_rng(0).integers(0, 2, (12, 6)).astype(float)
    c = pgmdsl.load("rbm", nv=6, nh=3).compile(dtype="float64")
    seen = []
    history = c.fit(data, epochs=10, batch_size=4, verbose=0, checkpoint=path, checkpoint_every=5,
                    callbacks=[_stop_after(2, how), lambda compiled, row: seen.append(row["epoch"])])
    assert isinstance(history, pgmdsl.History) and history.column("epoch") == [1, 2]
    assert seen == [1, 2], "every callback sees the epoch that stopped the run"
    assert checkpoint.read(path)["training"]["epoch"] == 2, "the stopped epoch is checkpointed"
    resumed = pgmdsl.load("rbm", nv=6, nh=3).compile(dtype="float64")
    continued = resumed.fit(data, epochs=10, batch_size=4, verbose=0, resume=path, checkpoint_every=5)
    assert continued.column("epoch") == list(range(1, 11))
    whole = pgmdsl.load("rbm", nv=6, nh=3).compile(dtype="float64")
    assert continued.column("reconstruction") == whole.fit(data, epochs=10, batch_size=4, verbose=0).column(
        "reconstruction"), "stopped and resumed is the uninterrupted run"
    for name in whole.params:
        np.testing.assert_array_equal(resumed.params[name], whole.params[name])
