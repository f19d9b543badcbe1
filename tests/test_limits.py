"""Resource limits and bad input: refused before anything is allocated or trained, in one line.

Each case is one a hostile or careless user can cause from the command line
or the Python API (issue 9): absurd batch, sample, parameter and sweep
counts, evaluation options that would fail only after training, data files
that declare or inflate to gigabytes, and data outside the units' support.
"""

import gzip
import json
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import pgmdsl
from pgmdsl import runs, units
from pgmdsl.cli import main
from pgmdsl.errors import DSLError
from pgmdsl.runtime.datasets import DataError, load_data, read_idx
from pgmdsl.runtime.initialize import MEMORY_BUDGET
from pgmdsl.runtime.train import Trainer

BARS = pgmdsl.datasets.bars_and_stripes()  # 32 rows of 16 binary values


def rbm(nv=16, nh=8, dtype="float64"):
    return pgmdsl.load("rbm", nv=nv, nh=nh).compile(dtype=dtype)


def one_line_error(capsys, arguments, status=1) -> str:
    """Run the CLI; it must exit with `status` and print one line (no traceback) on stderr."""
    assert main(arguments) == status
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def peak_bytes(function) -> int:
    """The largest traced allocation total while `function` runs (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- batch size ----

def test_a_batch_larger_than_the_data_is_capped_at_the_rows(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "rbm", "--data", "bars", "--set", "nh=4", "--epochs", "1", "--ais-runs", "0",
                 "--batch-size", "1000000000", "-o", str(run)]) == 0
    out = capsys.readouterr().out
    assert "batch size 1000000000 is more than the 29 training rows: using 29" in out
    assert json.loads((run / "metrics.json").read_text())["options"]["batch_size"] == 29
    rbm().fit(BARS, method="cd", batch_size=10**9, epochs=1, verbose=0)  # one minibatch: the 32 rows
    assert Trainer(rbm(), BARS, method="cd", batch_size=10**9, verbose=0).fused.S.shape[0] == 2 * 32
    with pytest.raises(DSLError, match=r"fit: 1000000000 persistent chains \(batch_size's; chains= sets them apart\)"):
        rbm().fit(BARS, method="pcd", batch_size=10**9, epochs=1, verbose=0)  # PCD keeps batch_size chains
    rbm().fit(BARS, method="pcd", batch_size=10**9, chains=10, epochs=1, verbose=0)


def test_a_batch_below_one_is_an_error(tmp_path, capsys):
    assert "fit: batch_size must be a positive integer, got 0" in one_line_error(
        capsys, ["train", "rbm", "--data", "bars", "--batch-size", "0", "-o", str(tmp_path / "run")])
    with pytest.raises(DSLError, match="batch_size must be a positive integer"):
        rbm().fit(BARS, batch_size=-3)


def test_persistent_chains_over_the_memory_budget_are_refused():
    with pytest.raises(DSLError, match=r"fit: 1000000000000 persistent chains .* at most \d+ fit"):
        Trainer(rbm(), BARS, method="pcd", chains=10**12, verbose=0)


# ---- sample counts ----

def test_a_sample_count_over_the_memory_budget_is_one_line(tmp_path, capsys):
    rbm().save(tmp_path / "model.npz")
    err = one_line_error(capsys, ["sample", str(tmp_path), "-n", "1000000000", "-o", str(tmp_path / "s.npy")])
    assert "1000000000 samples of rbm need" in err and "at most" in err and "fit" in err
    with pytest.raises(DSLError, match="samples of rbm need"):
        runs.visible_samples(rbm(), 10**9, steps=1)
    with pytest.raises(DSLError, match="samples of rbm need"):
        rbm().sample(10**12, steps=1)


def test_the_largest_sample_count_that_fits_is_named_and_works():
    c = rbm(nv=16, nh=8, dtype="float64")
    with pytest.raises(DSLError) as caught:
        c.sample(10**12, steps=1)
    fits = int(caught.value.message.split("at most ")[1].split()[0])
    assert fits == MEMORY_BUDGET // ((16 + 8) * 8)


# ---- parameter sizes ----

def test_parameters_over_the_memory_budget_are_refused_before_they_are_drawn(tmp_path, capsys):
    model = pgmdsl.load("rbm", nv=16, nh=100_000_000)
    with pytest.raises(DSLError, match=r"rbm\(nv=16, nh=100000000\): its parameters .* GiB .* budget"):
        model.compile(dtype="float32")
    err = one_line_error(capsys, ["train", "rbm", "--data", "bars", "--set", "nv=16", "--set", "nh=100000000",
                                  "--ais-runs", "0", "-o", str(tmp_path / "run")])
    assert "its parameters" in err and "W" in err
    assert not (tmp_path / "run").exists()


def test_parameters_are_drawn_in_their_own_dtype():
    """No float64 copy of a float32 weight matrix: the peak stays near the matrix itself."""
    model = pgmdsl.load("rbm", nv=64, nh=50_000)
    weights = 64 * 50_000 * 4
    assert peak_bytes(lambda: model.compile(dtype="float32")) < 1.6 * weights
    c = model.compile(dtype="float32")
    assert c.params["W"].dtype == np.float32 and 0.005 < float(np.std(c.params["W"])) < 0.015


# ---- Gibbs sweeps ----

def test_k_above_the_maximum_is_refused(tmp_path, capsys):
    err = one_line_error(capsys, ["train", "rbm", "--data", "bars", "--k", "1000000000", "-o", str(tmp_path / "run")])
    assert "fit: k must be a positive integer up to 10000, got 1000000000" in err
    with pytest.raises(DSLError, match="k must be a positive integer up to 10000"):
        rbm().fit(BARS, k=10**9)
    with pytest.raises(DSLError, match="mean_field_steps must be a positive integer up to 10000"):
        rbm().fit(BARS, mean_field_steps=10**9)


# ---- evaluation options, before training ----

EVALUATION_ERRORS = [
    (["--ais-distributions", "-3"], "--ais-distributions must be at least 1, got -3"),
    (["--ais-distributions", "0"], "--ais-distributions must be at least 1, got 0"),
    (["--ais-distributions", "1000000000000"], "--ais-distributions must be at most"),
    (["--ais-runs", "-1"], "--ais-runs must be 0 (no AIS) or at least 2, got -1"),
    (["--ais-runs", "1"], "one run has no standard error"),
    (["--raise-runs", "-1"], "--raise-runs must be at least 0, got -1"),
    (["--raise-rows", "0"], "--raise-rows must be at least 1, got 0"),
]


@pytest.mark.parametrize("arguments, message", EVALUATION_ERRORS)
def test_train_checks_evaluation_options_before_reading_data(tmp_path, capsys, arguments, message):
    # the data does not exist: the option's error must come first, before anything is read or trained
    err = one_line_error(capsys, ["train", "rbm", "--data", str(tmp_path / "absent.npy"), *arguments,
                                  "-o", str(tmp_path / "run")])
    assert message in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("arguments, message", EVALUATION_ERRORS)
def test_eval_checks_evaluation_options_first(tmp_path, capsys, arguments, message):
    assert message in one_line_error(capsys, ["eval", str(tmp_path / "absent"), "--data", "bars", *arguments])


def test_evaluate_checks_its_options():
    from pgmdsl.evaluate.report import evaluate

    with pytest.raises(DSLError, match="one run has no standard error"):
        evaluate(rbm(nv=16, nh=30), {"data": BARS}, ais_runs=1)


def test_ais_runs_over_the_memory_budget_are_refused_before_training(tmp_path, capsys):
    err = one_line_error(capsys, ["train", "rbm", "--data", "bars", "--set", "nh=30", "--ais-runs", "1000000000000",
                                  "-o", str(tmp_path / "run")])
    assert "--ais-runs 1000000000000" in err and "at most" in err
    assert not (tmp_path / "run").exists()


# ---- data files ----

def _idx_header(shape, code=0x08) -> bytes:
    return struct.pack(">HBB", 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def test_an_idx_header_declaring_more_than_the_budget_is_refused(tmp_path):
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_header((60000, 60000, 784)) + bytes(1000)))
    with pytest.raises(DataError, match=r"declares 60000 x 60000 x 784 values .* more than the .* budget"):
        read_idx(path)


def test_an_idx_gz_that_inflates_past_its_header_is_read_bounded(tmp_path):
    """A small .gz whose stream goes on far past the declared values: refused without inflating it all."""
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_header((10,)) + bytes(32 << 20), compresslevel=1))
    assert path.stat().st_size < 1 << 20

    def read():
        with pytest.raises(DataError, match="more bytes follow"):
            read_idx(path)

    assert peak_bytes(read) < 4 << 20


@pytest.mark.parametrize("damage", ["truncated", "short"])
def test_damaged_idx_files_are_data_errors(tmp_path, damage):
    raw = _idx_header((4, 4)) + bytes(range(16))
    path = tmp_path / "bad-idx2-ubyte.gz"
    packed = gzip.compress(raw)
    path.write_bytes(packed[:-12] if damage == "truncated" else gzip.compress(raw[:-3]))
    with pytest.raises(DataError, match=str(path)):
        read_idx(path)


def _npy_header(shape, dtype="<f8") -> bytes:
    import io

    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": dtype, "fortran_order": False, "shape": shape})
    return stream.getvalue()


def test_a_npy_declaring_a_huge_array_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.npy"
    path.write_bytes(_npy_header((1_000_000, 1_000_000)) + bytes(64))
    with pytest.raises(DataError, match=r"huge.npy declares 1000000 x 1000000 float64 values, which need .* GiB, more than the 2 GiB memory budget"):
        load_data(str(path))


def test_a_npz_declaring_a_huge_array_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("rows.npy", _npy_header((1_000_000, 1_000_000)) + bytes(64))
    with pytest.raises(DataError, match=r"huge.npz: rows declares 1000000 x 1000000 float64 values"):
        load_data(str(path))


def test_a_npy_shorter_than_its_header_says_is_a_data_error(tmp_path):
    path = tmp_path / "short.npy"
    path.write_bytes(_npy_header((10, 4)) + bytes(64))
    with pytest.raises(DataError, match="cannot read"):
        load_data(str(path))


def test_a_damaged_npz_is_one_line(tmp_path, capsys):
    whole = tmp_path / "whole.npz"
    np.savez(whole, rows=BARS, labels=np.arange(32) % 2)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DataError, match="cannot read"):
        load_data(str(damaged))
    with pytest.raises(DataError, match="cannot read"):
        pgmdsl.datasets.load_labels(str(damaged))
    assert "cannot read" in one_line_error(capsys, ["train", "rbm", "--data", str(damaged), "-o", str(tmp_path / "r")])


# ---- data outside the units' support ----

def test_unit_types_know_their_support():
    assert units.get("binary").bounds == (0.0, 1.0)
    assert units.get("spin").bounds == (-1.0, 1.0)
    assert units.get("onehot").bounds == (0.0, 1.0)
    assert units.get("gaussian").bounds is None
    units.get("binary").check_data(np.array([[0.0, 0.25, 1.0]]), "v")
    units.get("gaussian").check_data(np.array([[-1e30, 1e30]]), "x")
    with pytest.raises(DataError, match=r"layer 'v' has binary units, which take values in \[0, 1\]; the data has "
                                        r"16 at row 1, unit 2"):
        units.get("binary").check_data(np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 16.0]]), "v")
    with pytest.raises(DataError, match=r"layer 's' has spin units, which take values in \[-1, 1\]; the data has 2"):
        units.get("spin").check_data(np.array([[2.0, -1.0]]), "s")
    with pytest.raises(DataError, match=r"a row of layer 'y' is not one of its states: .* row 0 sums to 2"):
        units.get("onehot").check_data(np.array([[1.0, 1.0, 0.0]]), "y")


@pytest.mark.parametrize("scale, value", [(16, "16"), (-1, "-1"), (1e30, "1e+30")])
def test_binary_units_refuse_data_outside_0_1(tmp_path, capsys, scale, value):
    np.save(tmp_path / "rows.npy", BARS * scale)
    err = one_line_error(capsys, ["train", "rbm", "--data", str(tmp_path / "rows.npy"), "--epochs", "1",
                                  "--ais-runs", "0", "-o", str(tmp_path / "run")])
    assert f"layer 'v' has binary units, which take values in [0, 1]; the data has {value} at row" in err
    assert "divide by the largest value" in err and "digits-binary" in err
    assert not (tmp_path / "run").exists()
    with pytest.raises(DataError, match="binary units"):
        rbm().fit(BARS * scale, epochs=1, verbose=0)
    with pytest.raises(DataError, match="binary units"):
        rbm().fit(BARS, validation=BARS * scale, epochs=1, verbose=0)


def test_eval_refuses_data_outside_the_support(tmp_path, capsys):
    from pgmdsl.evaluate.report import evaluate

    rbm().save(tmp_path / "model.npz")
    np.save(tmp_path / "rows.npy", BARS * 16)
    assert "binary units" in one_line_error(capsys, ["eval", str(tmp_path), "--data", str(tmp_path / "rows.npy")])
    with pytest.raises(DataError, match="binary units"):
        evaluate(rbm(), {"data": BARS * 16})


def test_one_hot_layers_refuse_rows_that_are_no_state():
    c = pgmdsl.load("class_rbm", nx=16, ny=3, nh=4).compile(dtype="float64")
    labels = np.eye(3)[np.arange(32) % 3]
    c.fit({"x": BARS, "y": labels}, epochs=1, verbose=0)
    with pytest.raises(DataError, match="layer 'y' has onehot units"):
        c.fit({"x": BARS, "y": 2 * labels}, epochs=1, verbose=0)


def test_probabilities_and_real_values_are_accepted():
    rbm().fit(BARS * 0.5 + 0.25, epochs=1, verbose=0)  # probabilities: in the support's hull
    c = pgmdsl.load("gbrbm", nv=16, nh=4).compile(dtype="float64")
    c.fit(np.random.default_rng(0).normal(0, 100, (20, 16)), epochs=1, verbose=0, lr=1e-6)


# ---- resuming from the command line ----

def _train(run, epochs, *extra):
    return main(["train", "rbm", "--data", "bars", "--set", "nh=4", "--epochs", str(epochs), "--ais-runs", "0",
                 "--momentum", "0.5", "--batch-size", "4", "-o", str(run), *extra])


def _without_times(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.parametrize("method", ["pcd", "cd"])
def test_train_resume_continues_a_run_exactly(tmp_path, capsys, method):
    whole, parted = tmp_path / "whole", tmp_path / "parted"
    assert _train(whole, 4, "--method", method) == 0
    assert _train(parted, 2, "--method", method) == 0
    capsys.readouterr()
    assert _train(parted, 4, "--method", method, "--resume", str(parted)) == 0
    out = capsys.readouterr().out
    assert f"resuming from {parted / 'model.npz'} after epoch 2 of 4" in out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("epoch ")] == ["3/4", "4/4"]
    expected = pgmdsl.runtime.checkpoint.read(whole / "model.npz")
    resumed = pgmdsl.runtime.checkpoint.read(parted / "model.npz")
    for name, value in expected["params"].items():
        np.testing.assert_array_equal(resumed["params"][name], value)
    metrics = [json.loads((run / "metrics.json").read_text())["history"] for run in (whole, parted)]
    assert _without_times(metrics[0]) == _without_times(metrics[1])


def test_resume_without_a_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    err = one_line_error(capsys, ["train", "rbm", "--data", "bars", "--resume", str(tmp_path / "empty")])
    assert f"--resume {tmp_path / 'empty'}: no checkpoint at {tmp_path / 'empty' / 'model.npz'}" in err
    rbm().save(tmp_path / "model.npz")  # parameters only: no training state
    err = one_line_error(capsys, ["train", "rbm", "--data", "bars", "--resume", str(tmp_path)])
    assert "holds no training state to resume from" in err


def test_resume_refuses_a_different_model_or_options(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, 1) == 0
    capsys.readouterr()
    err = one_line_error(capsys, ["train", "rbm", "--data", "bars", "--set", "nh=5", "--epochs", "2",
                                  "--resume", str(run)])
    assert "holds rbm(nv=16, nh=4) in float32, not rbm(nv=16, nh=5) in float32" in err
    err = one_line_error(capsys, ["train", "rbm", "--data", "bars", "--set", "nh=4", "--epochs", "2", "--k", "3",
                                  "--batch-size", "4", "--resume", str(run)])
    assert "resume: k was 1" in err


def test_train_without_output_or_resume_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["train", "rbm", "--data", "bars"])
    assert caught.value.code == 2 and "-o RUN_DIR" in capsys.readouterr().err


# ---- last line of defence ----

def test_running_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 63.3 GiB for an array with shape (1000000029, 17)")

    monkeypatch.setattr(pgmdsl.runtime.datasets, "load_data", exhausted)
    err = one_line_error(capsys, ["train", "rbm", "--data", "bars", "-o", str(tmp_path / "run")])
    assert err.startswith("error: out of memory: Unable to allocate 63.3 GiB")


def test_a_negative_sample_seed_is_one_line(tmp_path, capsys):
    rbm().save(tmp_path / "model.npz")
    assert "--seed at least 0" in one_line_error(capsys, ["sample", str(tmp_path), "--seed", "-1",
                                                                  "-o", str(tmp_path / "s.npy")])
