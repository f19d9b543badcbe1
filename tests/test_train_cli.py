"""`pgmdsl train` and `pgmdsl sample`: a run directory end to end, and one-line errors."""

import csv
import gzip
import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from pgmdsl.cli import main
from pgmdsl.runtime.checkpoint import load_trained

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An rbm trained on bars and stripes for two epochs (nv set from the data: 16)."""
    run = tmp_path_factory.mktemp("cli") / "bars-run"
    assert main(["train", "rbm", "--data", "bars", "--set", "nh=8", "--epochs", "2", "--batch-size", "4",
                 "-o", str(run)]) == 0
    return run


def test_train_writes_the_run_directory(run_dir):
    assert (run_dir / "model.npz").is_file()
    with open(run_dir / "metrics.csv", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0][:4] == ["epoch", "lr", "reconstruction", "free_energy_gap"]
    assert [row[0] for row in rows[1:]] == ["1", "2"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["history"]] == [1, 2]
    assert metrics["model"] == "rbm" and metrics["sizes"] == {"nv": 16, "nh": 8}
    assert metrics["rows"] == {"training": 29, "validation": 3}
    assert metrics["options"]["method"] == "pcd" and metrics["options"]["batch_size"] == 4
    pytest.importorskip("matplotlib")
    for name in ("weights.png", "samples.png", "activations.png", "curves.png"):
        assert (run_dir / name).read_bytes()[:8] == PNG, name


def test_train_prints_one_line_per_epoch_and_the_files(tmp_path, capsys):
    assert main(["train", "rbm", "--data", "bars:3", "--set", "nh=4", "--epochs", "3", "--method", "cd", "--k", "2",
                 "--validation-fraction", "0", "--dtype", "float64", "-o", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "set nv=9 from the data (9 values per row)"
    assert out[1].startswith("training rbm(nv=9, nh=4) on bars:3: 16 rows; cd-2, 3 epochs")
    epochs = [line for line in out if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"]
    assert all("reconstruction" in line and "free-energy gap" not in line for line in epochs)  # nothing held out
    assert any(line.startswith("wrote ") and "model.npz" in line and "metrics.csv" in line for line in out)
    assert out[-1] == f"draw more samples with: pgmdsl sample {tmp_path / 'run'} -n 64"


def test_train_reads_an_idx_file(tmp_path, capsys):
    images = (np.arange(12 * 9) % 7 * 40).astype(np.uint8).reshape(12, 3, 3)  # grey levels 0..240
    header = struct.pack(">HBB3I", 0, 0x08, 3, 12, 3, 3)
    (tmp_path / "tiny-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
    run = tmp_path / "idx-run"
    assert main(["train", "rbm", "--data", str(tmp_path / "tiny-images-idx3-ubyte.gz"), "--set", "nh=3",
                 "--epochs", "1", "-o", str(run)]) == 0
    assert "set nv=9 from the data" in capsys.readouterr().out
    assert json.loads((run / "metrics.json").read_text())["rows"] == {"training": 11, "validation": 1}


def test_train_reports_the_free_energy_gap(run_dir, tmp_path, capsys):
    assert main(["train", "rbm", "--data", "bars", "--epochs", "1", "-o", str(tmp_path / "gap")]) == 0
    assert "free-energy gap" in next(line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch 1/1"))


def test_sample_writes_npy_rows(run_dir, tmp_path, capsys):
    out = tmp_path / "samples.npy"
    assert main(["sample", str(run_dir), "-n", "4", "--steps", "20", "-o", str(out)]) == 0
    samples = np.load(out)
    assert samples.shape == (4, 16)
    assert set(np.unique(samples)) <= {0.0, 1.0}
    assert f"wrote {out} (4 samples after 20 Gibbs steps)" in capsys.readouterr().out
    assert main(["sample", str(run_dir / "model.npz"), "-n", "2", "--steps", "5", "--mean", "-o", str(out)]) == 0
    means = np.load(out)
    assert means.shape == (2, 16) and np.all((means > 0) & (means < 1))


def test_sample_writes_png(run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["sample", str(run_dir), "-n", "9", "--steps", "10", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG
    assert main(["sample", str(run_dir), "-n", "2", "--steps", "1"]) == 0  # default: RUN_DIR/samples-2.png
    assert (run_dir / "samples-2.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("arguments, message", [
    (["train", "rbm", "--data", "mnist"], "--data mnist: not a data set name or a known file type"),
    (["train", "rbm", "--data", "missing.npy"], "--data missing.npy: no such file"),
    (["train", "rbm", "--data", "bars:x"], "bars:N takes a positive integer N"),
    (["train", "rbm", "--data", "bars", "--set", "nv=20"], "has 20 units (--set nv=20); change or drop that setting"),
    (["train", "class_rbm", "--data", "bars"], "observes 2 layers (x, y)"),
    (["train", "dbn", "--data", "bars", "--epochs", "1,2"], "--epochs: 2 values for the 3 levels of dbn"),
    (["train", "rbm", "--data", "bars", "--lr", "0"], "fit: lr must be a positive number"),
    (["train", "rbm", "--data", "bars", "--validation-fraction", "1"], "--validation-fraction must be in [0, 1)"),
    (["train", "rbn", "--data", "bars"], "no such model file or standard-library model: 'rbn'"),
])
def test_train_errors_are_one_line(tmp_path, capsys, arguments, message):
    assert main(arguments + ["-o", str(tmp_path / "run")]) == 1
    captured = capsys.readouterr()
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert not (tmp_path / "run").exists()


def test_sample_errors_are_one_line(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.strip() == f"error: no such run directory: {tmp_path / 'nowhere'}"
    assert main(["sample", str(tmp_path)]) == 1
    assert f"{tmp_path} holds no model.npz" in capsys.readouterr().err
    assert main(["sample", str(tmp_path), "-o", "x.txt"]) == 1


def test_sample_refuses_other_outputs(run_dir, capsys):
    assert main(["sample", str(run_dir), "-o", "samples.txt"]) == 1
    assert "-o takes a .png or .npy file" in capsys.readouterr().err


def test_bad_data_exits_1_without_traceback_in_a_process(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pgmdsl.cli", "train", "rbm", "--data", "nothing.csv", "-o",
                             str(tmp_path / "run")], capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: --data nothing.csv: not a data set name") and "Traceback" not in result.stderr


def test_an_unwritable_run_directory_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["train", "rbm", "--data", "bars", "--epochs", "1", "-o", str(tmp_path / "file")]) == 1
    assert capsys.readouterr().err == f"error: -o {tmp_path / 'file'}: exists and is not a directory\n"


def test_train_prints_an_evaluation_and_eval_evaluates_a_run(tmp_path, capsys):
    run = tmp_path / "bars-run"
    assert main(["train", "rbm", "--data", "bars", "--set", "nh=4", "--epochs", "2", "--batch-size", "8",
                 "--validation-fraction", "0", "-o", str(run)]) == 0
    out = capsys.readouterr().out
    assert "evaluation:" in out and "exact, 16 states enumerated" in out
    assert "log-likelihood" in out and "pseudo-log-likelihood" in out
    result = json.loads((run / "evaluation.json").read_text())
    assert result["log_z"]["method"] == "exact" and result["train"]["rows"] == 32
    assert main(["eval", str(run), "--data", "bars", "--ais-runs", "20", "--ais-distributions", "200"]) == 0
    out = capsys.readouterr().out
    assert "evaluating rbm" in out and "log Z" in out and "RAISE" not in out
    assert main(["eval", str(run), "--data", "bars", "--raise-runs", "5", "--raise-rows", "7",
                 "--ais-distributions", "200"]) == 0
    raised = [line for line in capsys.readouterr().out.splitlines() if "RAISE" in line]
    assert len(raised) == 1 and "a stochastic lower bound (with log Z above: " in raised[0] and "(7 rows)" in raised[0]
    result = json.loads((run / "evaluation.json").read_text())
    assert result["data"]["raise_rows"] == 7 and np.isfinite(result["data"]["raise_log_likelihood"])
    assert main(["eval", str(run), "--data", "bars", "--raise-rows", "0"]) == 1
    assert "--raise-rows must be at least 1, got 0" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing"), "--data", "bars"]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_train_and_eval_with_labels_report_the_accuracy(tmp_path, capsys):
    """class_rbm on digits with the labels one-hot in y: p(y | x) by enumeration gives an accuracy per set."""
    run = tmp_path / "labelled"
    assert main(["train", "class_rbm", "--data", "digits-binary", "--labels", "y", "--set", "nh=16", "--epochs", "2",
                 "--ais-runs", "0", "-o", str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("training class_rbm(nx=64, ny=10, nh=16) on digits-binary (labels in y): 1617 rows, "
                             "180 for validation")
    accuracy = [line for line in out if line.strip().startswith("accuracy")]
    assert len(accuracy) == 2 and "most probable y given the rest, train (1617 rows)" in accuracy[0]
    result = json.loads((run / "evaluation.json").read_text())
    assert 0.1 < result["train"]["accuracy"] <= 1 and result["validation"]["labels"] == "y"
    assert json.loads((run / "metrics.json").read_text())["labels"] == "y"
    assert main(["eval", str(run), "--data", "digits-binary", "--labels", "y", "--ais-runs", "0"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "data (1797 rows)" in out
    pytest.importorskip("matplotlib")
    assert (run / "weights.png").is_file() and (run / "samples.png").is_file()  # the pixels x are the image
    assert main(["sample", str(run), "-n", "4", "--steps", "2", "-o", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 64)


def test_labels_from_a_npz(tmp_path, capsys):
    rows = np.random.default_rng(0).integers(0, 2, (30, 9)).astype(float)
    np.savez(tmp_path / "set.npz", pixels=rows, labels=np.arange(30) % 3)
    assert main(["train", "class_rbm", "--data", str(tmp_path / "set.npz"), "--labels", "y", "--set", "ny=3",
                 "--set", "nh=4", "--epochs", "1", "--ais-runs", "0", "-o", str(tmp_path / "run")]) == 0
    assert "accuracy" in capsys.readouterr().out
    np.savez(tmp_path / "bad.npz", pixels=rows, labels=np.arange(30) % 5)
    assert main(["train", "class_rbm", "--data", str(tmp_path / "bad.npz"), "--labels", "y", "--set", "ny=3",
                 "--epochs", "1", "-o", str(tmp_path / "bad")]) == 1
    assert "the labels go up to 4, but layer 'y' has 3 classes" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["train", "class_rbm", "--data", "bars", "--labels", "y"], "--data bars has no labels"),
    (["train", "class_rbm", "--data", "digits", "--labels", "x"], "labels go in a visible one-hot layer"),
    (["train", "class_rbm", "--data", "digits", "--labels", "z"], "--labels z: model class_rbm has no such layer"),
    (["train", "rbm", "--data", "digits", "--labels", "h"], "'h' is a hidden binary layer"),
])
def test_label_errors_are_one_line(tmp_path, capsys, arguments, message):
    assert main(arguments + ["--epochs", "1", "-o", str(tmp_path / "run")]) == 1
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1


def test_train_with_a_discriminative_objective_prints_the_label_accuracy_per_epoch(tmp_path, capsys):
    assert main(["train", "class_rbm", "--data", "digits-binary", "--labels", "y", "--objective", "discriminative",
                 "--set", "nh=16", "--epochs", "2", "--lr", "0.5", "--ais-runs", "0", "-o", str(tmp_path / "run")]) == 0
    epochs = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2 and all("train accuracy" in line and "validation accuracy" in line for line in epochs)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["options"]["objective"] == "discriminative" and metrics["options"]["labels"] == "y"
    assert metrics["history"][-1]["train_label_accuracy"] > 0.5  # ten classes: chance is 0.1
    assert main(["train", "class_rbm", "--data", "digits-binary", "--objective", "hybrid", "--epochs", "1",
                 "-o", str(tmp_path / "bad")]) == 1
    assert "objective='hybrid' needs labels=" in capsys.readouterr().err


def test_generative_weight_reaches_the_trainer(tmp_path):
    assert main(["train", "class_rbm", "--data", "digits-binary", "--labels", "y", "--objective", "hybrid",
                 "--generative-weight", "0.5", "--set", "nh=4", "--epochs", "1", "--ais-runs", "0",
                 "-o", str(tmp_path / "run")]) == 0
    options = json.loads((tmp_path / "run" / "metrics.json").read_text())["options"]
    assert options["objective"] == "hybrid" and options["generative_weight"] == 0.5


def test_eval_with_labels_on_a_model_with_more_observed_layers_is_one_line(tmp_path, capsys):
    import pgmdsl

    source = """model three(n: int = 64, c: int = 10, m: int = 3)
visible x[n]: binary
visible z[n]: binary
visible y[c]: onehot
hidden h[m]: binary
param W[n, m] ~ normal(0, 0.1)
param V[n, m] ~ normal(0, 0.1)
param U[c, m] ~ normal(0, 0.1)
energy = -x[i]*W[i,j]*h[j] - z[i]*V[i,j]*h[j] - y[k]*U[k,j]*h[j]"""
    (tmp_path / "three.dgm").write_text(source)
    pgmdsl.load(tmp_path / "three.dgm").compile().save(tmp_path / "three.npz")
    assert main(["eval", str(tmp_path / "three.npz"), "--data", "digits-binary", "--labels", "y", "--ais-runs", "0"]) == 1
    err = capsys.readouterr().err
    assert "--labels y: model three observes x, z besides its labels" in err and len(err.strip().splitlines()) == 1


# ---- real-valued data: standardised by default, a smaller default rate, divergence in one line ----

@pytest.fixture
def real_rows(tmp_path):
    """Rows far from mean 0 and standard deviation 1, in a .npy."""
    rows = np.random.default_rng(1).normal([100.0, -3.0, 0.5], [10.0, 0.1, 2.0], size=(120, 3))
    np.save(tmp_path / "rows.npy", rows)
    return tmp_path / "rows.npy", rows


def _log_likelihood(out: str, name: str) -> float:
    return float(next(line.split()[1] for line in out.splitlines()
                      if line.strip().startswith("log-likelihood ") and line.endswith(f"{name} (120 rows)")))


def test_gbrbm_trains_on_standardised_rows_and_gives_samples_and_evaluations_in_the_data_units(real_rows, tmp_path,
                                                                                                 capsys):
    data, rows = real_rows
    run = tmp_path / "run"
    assert main(["train", "gbrbm", "--data", str(data), "--set", "nh=2", "--epochs", "2", "--validation-fraction",
                 "0", "-o", str(run)]) == 0
    out = capsys.readouterr().out
    assert "lr 0.005 (the default for real-valued units; --lr sets it)" in out
    assert "standardised v: each unit to mean 0, standard deviation 1 on the training rows" in out
    assert "(log-likelihoods in the data's units: the standardised rows' less sum(log scale) = " in out
    trained = _log_likelihood(out, "train")
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["standardized"]["layers"] == ["v"]
    assert evaluation["train"]["log_likelihood"] == pytest.approx(trained, abs=1e-4)
    stored = load_trained(run / "model.npz").standardization
    np.testing.assert_allclose(stored.mean["v"], rows.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stored.scale["v"], rows.std(0), rtol=1e-5)
    assert main(["sample", str(run), "-n", "300", "--steps", "20", "-o", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert abs(samples[:, 0].mean() - 100) < 5 and abs(samples[:, 1].mean() + 3) < 0.2  # not around 0
    assert main(["eval", str(run), "--data", str(data)]) == 0  # the same rows, through the same transform
    assert _log_likelihood(capsys.readouterr().out, "data") == pytest.approx(trained, abs=2e-4)


def test_no_standardize_trains_on_the_raw_rows(real_rows, tmp_path, capsys):
    data, _ = real_rows
    run = tmp_path / "raw"
    assert main(["train", "gbrbm", "--data", str(data), "--set", "nh=2", "--epochs", "1", "--no-standardize",
                 "--lr", "0.0001", "--ais-runs", "0", "-o", str(run)]) == 0
    out = capsys.readouterr().out
    assert "standardised" not in out and "lr 0.0001," in out
    assert load_trained(run / "model.npz").standardization is None
    assert json.loads((run / "metrics.json").read_text())["standardized"] == []


def test_a_resumed_run_keeps_its_standardisation(real_rows, tmp_path, capsys):
    data, _ = real_rows
    run = tmp_path / "run"
    common = ["train", "gbrbm", "--data", str(data), "--set", "nh=2", "--ais-runs", "0"]
    assert main(common + ["--epochs", "1", "-o", str(run)]) == 0
    before = load_trained(run / "model.npz").standardization
    assert main(common + ["--epochs", "2", "--resume", str(run), "--no-standardize"]) == 1
    assert capsys.readouterr().err.strip().endswith("the run was trained on standardised rows: drop --no-standardize")
    assert main(common + ["--epochs", "2", "--resume", str(run)]) == 0
    after = load_trained(run / "model.npz").standardization
    np.testing.assert_array_equal(after.scale["v"], before.scale["v"])
    raw = tmp_path / "raw"
    assert main(common + ["--epochs", "1", "--no-standardize", "--lr", "0.0001", "-o", str(raw)]) == 0
    assert main(common + ["--epochs", "2", "--resume", str(raw)]) == 1
    assert capsys.readouterr().err.strip().endswith("the run was trained on raw rows: give --no-standardize")


def test_a_diverging_run_is_one_line_without_numpy_warnings(real_rows, tmp_path, capsys):
    data, _ = real_rows
    assert main(["train", "gbrbm", "--data", str(data), "--set", "nh=2", "--epochs", "3", "--lr", "50",
                 "--ais-runs", "0", "-o", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "warning:" not in err
    assert err.startswith("error: training diverged in epoch ") and "numpy warned of overflow in " in err


# ---- evidence from the command line: --clamp and --inpaint ----

@pytest.fixture
def evidence(run_dir, tmp_path):
    """Files of rows for the bars run: two images, one hidden code, a mask of the top half."""
    images = np.array([[1.0] * 4 + [0.0] * 12, [0.0, 1.0, 0.0, 0.0] * 4])
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "code.npy", np.eye(8)[3])
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    np.save(tmp_path / "top.npy", mask)
    return tmp_path, images, mask.ravel()


def test_sample_with_a_clamped_hidden_layer(run_dir, evidence, capsys):
    folder, _, _ = evidence
    out = folder / "given-h.npy"
    assert main(["sample", str(run_dir), "--clamp", f"h={folder / 'code.npy'}", "-n", "5", "--steps", "2", "--mean",
                 "-o", str(out)]) == 0
    means = np.load(out)
    assert means.shape == (5, 16) and np.allclose(means, means[0])  # p(v | h) for the same h in every chain
    assert f"wrote {out} (5 samples after 2 Gibbs steps with h clamped)" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    assert main(["sample", str(run_dir), "--clamp", f"h={folder / 'code.npy'}", "-n", "4", "--steps", "1",
                 "-o", str(folder / "given-h.png")]) == 0
    assert (folder / "given-h.png").read_bytes()[:8] == PNG


def test_sample_inpaints_the_unknown_units(run_dir, evidence, capsys):
    folder, images, known = evidence
    out = folder / "completed.npy"
    assert main(["sample", str(run_dir), "--inpaint", str(folder / "images.npy"), "--mask", str(folder / "top.npy"),
                 "--steps", "10", "-o", str(out)]) == 0
    completed = np.load(out)
    assert completed.shape == (2, 16) and np.array_equal(completed[:, known], images[:, known])
    assert "(2 rows of v, 50% of the units known, the rest after 10 Gibbs steps)" in capsys.readouterr().out
    assert main(["sample", str(run_dir), "--inpaint", f"v={folder / 'images.npy'}", "--mask", str(folder / "top.npy"),
                 "-n", "2", "--steps", "1", "-o", str(out)]) == 0
    pytest.importorskip("matplotlib")
    assert main(["sample", str(run_dir), "--inpaint", str(folder / "images.npy"), "--mask", str(folder / "top.npy"),
                 "--steps", "1"]) == 0  # default: RUN_DIR/inpainted-2.png, known and completed side by side
    assert (run_dir / "inpainted-2.png").read_bytes()[:8] == PNG


def test_evidence_errors_are_one_line(run_dir, evidence, capsys):
    folder, _, _ = evidence
    np.save(folder / "half.npy", np.full(16, 0.5))
    np.save(folder / "wide.npy", np.zeros((2, 17)))
    np.save(folder / "threes.npy", np.full((3, 16), 0.0))
    images, top = str(folder / "images.npy"), str(folder / "top.npy")
    cases = [
        (["--clamp", f"x={images}"], "--clamp x: model rbm has no such layer (its layers: v, h)"),
        (["--clamp", f"v={images}"], "clamping v leaves no visible layer of rbm to sample"),
        (["--clamp", f"h={images}"], "--clamp h: an array of shape (2, 16); the layer takes one row of shape (8,)"),
        (["--clamp", "h"], "--clamp takes LAYER=FILE.npy, got 'h'"),
        (["--clamp", f"h={folder / 'missing.npy'}"], f"--clamp h={folder / 'missing.npy'}: no such file"),
        (["--clamp", f"h={folder / 'code.npy'}", "--clamp", f"h={folder / 'code.npy'}"], "--clamp h: given twice"),
        (["--inpaint", images, "--mask", str(folder / "half.npy")], "holds 0.5; a mask is boolean"),
        (["--inpaint", str(folder / "wide.npy"), "--mask", top], "an array of shape (2, 17); the layer takes one row"),
        (["--inpaint", images, "--mask", str(folder / "threes.npy")], "3 rows of mask for 2 rows of values"),
        (["--inpaint", images], "--inpaint FILE.npy and --mask MASK.npy go together"),
        (["--inpaint", images, "--mask", top, "-n", "3"], "holds 2 rows and -n is 3"),
        (["--inpaint", images, "--mask", top, "--clamp", f"h={folder / 'code.npy'}"], "--inpaint does not go with"),
        (["--inpaint", f"h={images}", "--mask", top], "--inpaint h=...: model rbm has no such visible layer"),
    ]
    for options, message in cases:
        assert main(["sample", str(run_dir)] + options) == 1, options
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (options, err)


def test_a_png_of_what_is_not_an_image_is_refused(tmp_path, capsys):
    pgmdsl_rbm = __import__("pgmdsl").load("rbm", nv=5, nh=2).compile()
    pgmdsl_rbm.save(tmp_path / "model.npz")
    assert main(["sample", str(tmp_path), "-n", "2", "--steps", "1"]) == 0  # the default output: a .npy
    assert np.load(tmp_path / "samples-2.npy").shape == (2, 5)
    assert main(["sample", str(tmp_path), "-n", "2", "-o", str(tmp_path / "s.png")]) == 1
    assert "is not an image: write the samples to a .npy file" in capsys.readouterr().err


def test_train_by_parallel_tempering_with_a_ladder(tmp_path, capsys):
    run = tmp_path / "pt-run"
    assert main(["train", "rbm", "--data", "bars:3", "--set", "nh=4", "--epochs", "2", "--method", "pt",
                 "--temperatures", "1,0.5,0.25", "--ais-runs", "0", "-o", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["options"]["temperatures"] == [1.0, 0.5, 0.25]
    assert all("swap_rate" in row for row in metrics["history"])
    assert main(["train", "rbm", "--data", "bars:3", "--set", "nh=4", "--epochs", "1", "--method", "pt",
                 "--temperatures", "3", "--ais-runs", "0", "-o", str(tmp_path / "count")]) == 0
    capsys.readouterr()
    assert main(["train", "rbm", "--data", "bars:3", "--set", "nh=4", "--epochs", "1", "--method", "cd",
                 "--temperatures", "3", "-o", str(tmp_path / "refused")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "temperatures" in error and "\n" not in error


def test_an_existing_run_is_not_overwritten_silently(tmp_path, capsys):
    run = tmp_path / "kept"
    arguments = ["train", "rbm", "--data", "bars:3", "--set", "nh=4", "--epochs", "1", "--ais-runs", "0", "-o", str(run)]
    assert main(arguments) == 0
    before = (run / "model.npz").read_bytes()
    capsys.readouterr()
    assert main(arguments[:-2] + ["--seed", "3", "-o", str(run)]) == 1
    error = capsys.readouterr().err.strip()
    assert "already holds a run" in error and "--overwrite" in error and "\n" not in error
    assert (run / "model.npz").read_bytes() == before
    assert main(arguments[:-2] + ["--seed", "3", "--overwrite", "-o", str(run)]) == 0
    assert (run / "model.npz").read_bytes() != before


def test_quiet_keeps_the_start_the_results_and_what_was_written(tmp_path, capsys):
    assert main(["train", "rbm", "--data", "bars", "--epochs", "3", "--quiet", "--ais-runs", "0",
                 "-o", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "training rbm" in out and "wrote" in out and "epoch 1/3" not in out
    assert main(["train", "rbm", "--data", "bars", "--epochs", "2", "--ais-runs", "0", "-o", str(tmp_path / "loud")]) == 0
    assert "epoch 1/2" in capsys.readouterr().out


def test_an_ais_evaluation_prints_its_effective_sample_size_and_draws_its_weights(tmp_path, capsys):
    """26 hidden and 36 visible units: past enumeration on either side, so log Z is AIS's."""
    run = tmp_path / "ais-run"
    assert main(["train", "rbm", "--data", "bars:6", "--set", "nh=26", "--epochs", "1", "--quiet", "-o", str(run),
                 "--ais-runs", "4", "--ais-distributions", "20"]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.strip().startswith("log Z")]
    assert "AIS, 4 runs x 20 distributions" in line and "effective sample size" in line and "of 4)" in line
    log_z = json.loads((run / "evaluation.json").read_text())["log_z"]
    assert len(log_z["log_weights"]) == 4 and 1 <= log_z["effective_sample_size"] <= 4
    pytest.importorskip("matplotlib")
    assert f"wrote {run / 'ais.png'}" in out and (run / "ais.png").read_bytes()[:8] == PNG
    (run / "ais.png").unlink()
    assert main(["eval", str(run), "--data", "bars:6", "--ais-runs", "3", "--ais-distributions", "10", "--quiet"]) == 0
    assert "effective sample size" in capsys.readouterr().out and (run / "ais.png").read_bytes()[:8] == PNG
