"""Sequence models from the command line: `pgmdsl train crbm --data seq.npy`, `sample --frames`, `eval`, and the
steps behind them (runs: split, windows, seed frames, generation; evaluate.report.evaluate_sequences)."""

import json

import numpy as np
import pytest

import pgmdsl
from pgmdsl import runs
from pgmdsl.cli import main
from pgmdsl.errors import DataError, DSLError
from pgmdsl.evaluate import conditional_log_likelihood, persistence_error, prediction_error
from pgmdsl.evaluate.report import _spread, evaluate_sequences, sequence_lines
from pgmdsl.runtime import standardize
from pgmdsl.runtime.checkpoint import load_trained

PNG = b"\x89PNG\r\n\x1a\n"


def crbm(nv=2, nh=3, order=2):
    return pgmdsl.load("crbm", nv=nv, nh=nh, order=order).compile(dtype="float64")


def motion(sequences=4, frames=60, channels=2, seed=1):
    """Oscillator sequences moved far from mean 0 and scale 1 (so standardisation shows)."""
    return pgmdsl.datasets.oscillators(sequences=sequences, frames=frames, channels=channels, seed=seed) * 4 + 20


# ---- the steps ----

def test_fit_frames_sizes_the_frame_layer_from_the_data():
    model, note = runs.fit_frames("crbm", {"nh": 4}, 5)
    assert model.arguments["nv"] == 5 and model.layer("past").shape == (3, 5)
    assert note == "set nv=5 from the data (5 values per frame)"
    assert runs.fit_frames("crbm", {"nv": 5}, 5)[1] is None
    with pytest.raises(DSLError, match="has 6 units \\(--set nv=6\\); change or drop that setting"):
        runs.fit_frames("crbm", {"nv": 6}, 5)
    with pytest.raises(DSLError, match="model rbm is not a sequence model"):
        runs.fit_frames("rbm", {}, 5)


def test_split_sequences_holds_out_whole_sequences_or_the_end_of_one():
    sequences = np.arange(4 * 10 * 2.0).reshape(4, 10, 2)
    train, held = runs.split_sequences(sequences, 0.25, order=2)
    np.testing.assert_array_equal(train, sequences[:3])
    np.testing.assert_array_equal(held, sequences[3:])
    assert runs.split_sequences(sequences[:2], 0.1, 2)[1].shape == (1, 10, 2)  # at least one sequence
    assert runs.split_sequences(sequences, 0.0, 2) == (sequences, None)
    train, held = runs.split_sequences(sequences[:1], 0.25, order=2)  # 8 windows: the last 2 held out
    assert train.shape == (1, 8, 2) and held.shape == (1, 4, 2)
    np.testing.assert_array_equal(held[0], sequences[0, 6:])  # two windows and their two past frames
    c = crbm()
    assert len(c.windows(train)["v"]) == 6 and len(c.windows(held)["v"]) == 2
    assert runs.split_sequences(sequences[:1], 0.01, 2)[1] is None  # rounds to no window
    with pytest.raises(DSLError, match="--validation-fraction must be in"):
        runs.split_sequences(sequences, 1.0, 2)
    with pytest.raises(DSLError, match="leaves none to train on"):
        runs.split_sequences(sequences[:2], 0.9, 2)
    with pytest.raises(DSLError, match="windows of the sequence leaves none"):
        runs.split_sequences(sequences[:1, :4], 0.9, 2)


def test_as_frames_and_sequence_windows_standardise_before_cutting():
    c = crbm()
    sequences = motion()
    with pytest.raises(DataError, match="frames of 3 values; layer 'v' of crbm takes 2"):
        runs.as_frames(c, np.zeros((1, 5, 3)))
    np.testing.assert_array_equal(runs.sequence_windows(c, sequences)["v"], c.windows(sequences)["v"])
    c.standardization = standardize.fit_frames(c, sequences)
    windows = runs.sequence_windows(c, sequences)
    np.testing.assert_allclose(windows["v"].mean(0), 0, atol=0.05)
    np.testing.assert_allclose(windows["past"], c.standardization.apply(c.windows(sequences))["past"])
    with pytest.raises(DataError, match="sequences of 2 frames; model crbm \\(order 2\\) needs at least"):
        runs.sequence_windows(c, sequences[:, :2])


def test_seed_frames_are_stored_plainly_and_checked_on_load(tmp_path):
    c = crbm()
    sequences = motion()
    path = runs.save_seed_frames(c, sequences, tmp_path)
    assert path.name == runs.SEED_FRAMES
    np.testing.assert_array_equal(runs.load_seed_frames(c, tmp_path), sequences[0, :2])
    assert np.load(path, allow_pickle=False).dtype == np.float64
    np.save(path, np.zeros((1, 2)))  # fewer than order frames
    with pytest.raises(DataError, match=r"seed frames are numbers of shape \(T, 2\) or \(S, T, 2\) with T >= order"):
        runs.load_seed_frames(c, tmp_path)
    np.save(path, np.full((3, 2), np.inf))
    with pytest.raises(DataError, match="NaN or infinite"):
        runs.load_seed_frames(c, tmp_path)
    path.write_bytes(b"\x93NUMPY damaged")
    with pytest.raises(DSLError):
        runs.load_seed_frames(c, tmp_path)
    path.unlink()
    with pytest.raises(DSLError, match="holds no seed-frames.npy"):
        runs.load_seed_frames(c, tmp_path)
    assert runs.seed_frames(c, np.zeros((2, 5, 2)), "x").shape == (2, 5, 2)
    with pytest.raises(DataError, match="^error: --seed-frames s.npy: an array of int64"):
        runs.seed_frames(c, np.zeros((4, 3), dtype=np.int64), "--seed-frames s.npy")


def test_generate_frames_answers_in_the_data_units():
    """With no hidden coupling the model is the linear recursion of its standardised frames; generate_frames
    gives that recursion's frames mapped back through the standardisation."""
    c = crbm()
    c.params["W"][...] = 0
    c.params["B"][...] = 0
    c.params["A"][...] = np.random.default_rng(3).normal(0, 0.3, (2, 2, 2))
    sequences = motion()
    c.standardization = s = standardize.fit_frames(c, sequences)
    seeds = sequences[0, :4]
    expected = s.undo("v", c.generate(5, s.apply({"v": seeds})["v"], gibbs_steps=2))
    np.testing.assert_allclose(runs.generate_frames(c, 5, seeds, gibbs_steps=2), expected)
    assert runs.generate_frames(c, 3, sequences[:2, :4], gibbs_steps=1).shape == (2, 3, 2)


def test_to_host():
    assert isinstance(runs.to_host([1, 2]), np.ndarray)


def test_save_pictures_of_a_sequence_model(tmp_path):
    pytest.importorskip("matplotlib")
    c = crbm()
    written, notes = runs.save_pictures(c, [{"epoch": 1, "reconstruction": 0.1}], tmp_path, seeds=motion()[0, :2])
    assert [p.name for p in written] == ["generated.png", "curves.png"]
    assert notes == ["no weights.png: its visible layer is not an image", "no samples.png: the visible layer is not an image"]
    structured = pgmdsl.load("structured_crbm", nx=4, ny=16, nh=3).compile()  # an image it cannot sample unclamped
    written, notes = runs.save_pictures(structured, [{"epoch": 1, "reconstruction": 0.1}], tmp_path)
    assert [p.name for p in written] == ["weights.png", "curves.png"]
    assert notes == ["no samples.png: structured_crbm is conditioned on x"]


# ---- the evaluation ----

def test_evaluate_sequences_is_the_conditional_likelihood_and_the_prediction_errors():
    c = crbm()
    windows = c.windows(pgmdsl.datasets.oscillators(sequences=2, frames=30, channels=2, seed=0))
    result = evaluate_sequences(c, {"validation": windows}, gibbs_steps=3)
    assert result["conditional"] == {"method": "exact", "states": 8, "rows": 2**22 // 8}
    metrics = result["validation"]
    assert metrics["rows"] == metrics["log_likelihood_rows"] == 56
    assert metrics["log_likelihood"] == pytest.approx(float(np.mean(conditional_log_likelihood(c, windows))))
    assert metrics["prediction_error"] == pytest.approx(float(np.mean(prediction_error(c, windows, 3))))
    assert metrics["persistence_error"] == pytest.approx(float(np.mean(persistence_error(c, windows))))
    text = sequence_lines(result, " (standardised units)")
    assert text[0].startswith("  log p(frame | past)") and "nats per frame, validation (56 windows; exact, 8 latent " \
        "states per window)" in text[0]
    assert "one-step prediction error" in text[1] and "(standardised units), validation (56 windows" in text[1]
    assert "persistence error" in text[2]


def test_evaluate_sequences_takes_ais_on_a_bounded_number_of_windows_or_skips_it():
    c = crbm(nh=26)  # 2^26 hidden states per window: AIS
    windows = c.windows(pgmdsl.datasets.oscillators(sequences=1, frames=40, channels=2, seed=0))
    result = evaluate_sequences(c, {"data": windows}, ais_runs=3, distributions=5, rows=4, gibbs_steps=1)
    assert result["conditional"] == {"method": "ais", "runs": 3, "rows": 4, "distributions": 5}
    assert result["data"]["log_likelihood_rows"] == 4 and np.isfinite(result["data"]["log_likelihood"])
    assert "(4 of 38 windows; AIS, 3 runs x 5 distributions per window)" in sequence_lines(result)[0]
    skipped = evaluate_sequences(c, {"data": windows}, ais_runs=0, gibbs_steps=1)
    assert skipped["conditional"] == {"method": "none"} and "log_likelihood" not in skipped["data"]
    assert "not estimated" in sequence_lines(skipped)[0]
    with pytest.raises(DSLError, match="--ais-runs 1"):
        evaluate_sequences(c, {"data": windows}, ais_runs=1)
    with pytest.raises(DSLError, match="rows and gibbs_steps must be at least 1"):
        evaluate_sequences(c, {"data": windows}, gibbs_steps=0)


def test_spread_takes_rows_from_all_over_the_set():
    np.testing.assert_array_equal(_spread(5, 10), np.arange(5))
    np.testing.assert_array_equal(_spread(101, 3), [0, 50, 100])


# ---- the command line, end to end ----

@pytest.fixture(scope="module")
def sequence_run(tmp_path_factory):
    """crbm trained by `pgmdsl train` on a small sequence file; (run directory, data file, the sequences, output)."""
    root = tmp_path_factory.mktemp("sequences")
    sequences = motion()
    np.save(root / "seq.npy", sequences)
    run = root / "run"
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["train", "crbm", "--data", str(root / "seq.npy"), "--set", "nh=4", "--epochs", "3",
                     "--dtype", "float64", "-o", str(run)]) == 0
    return run, root / "seq.npy", sequences, out.getvalue()


def test_train_a_sequence_model_from_a_file(sequence_run):
    run, data, sequences, out = sequence_run
    lines = out.splitlines()
    assert lines[0] == "set nv=2 from the data (2 values per frame)"
    assert lines[1].startswith(f"training crbm(nv=2, nh=4, order=3) on {data}: 171 windows from 3 sequences, 57 for "
                               "validation from 1 sequence; cd-1, 3 epochs, lr W=0.01,A=0.01,B=0.01,a=0.01,b=0.01,"
                               "log_sigma=0.001, batch size 100, momentum 0.9 (recipe 'sequence'")
    assert lines[1].endswith("method, k, lr, batch size, momentum; give them to override)")  # not the epochs given
    assert lines[2].startswith("standardised v and past: each channel to mean 0")
    assert "log p(frame | past)" in out and "exact, 16 latent states per window" in out
    assert "one-step prediction error" in out and "persistence error" in out
    assert lines[-1] == f"generate frames with: pgmdsl sample {run} --frames 200 -o frames.png"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["recipe"] == "sequence" and metrics["options"]["momentum"] == 0.9
    assert metrics["sequences"] == {"training": 3, "validation": 1, "frames": 60, "order": 3}
    assert metrics["rows"] == {"training": 171, "validation": 57} and metrics["standardized"] == ["v", "past"]
    stored = load_trained(run / "model.npz").standardization
    np.testing.assert_allclose(stored.mean["v"], sequences[:3].reshape(-1, 2).mean(0))  # the training frames'
    np.testing.assert_array_equal(np.load(run / "seed-frames.npy"), sequences[0, :3])
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["conditional"]["method"] == "exact" and evaluation["validation"]["rows"] == 57
    assert evaluation["standardized"]["log_jacobian"] == pytest.approx(np.log(stored.scale["v"]).sum())
    from pgmdsl import plots

    if plots.have_matplotlib():
        assert (run / "generated.png").read_bytes()[:8] == PNG


def test_the_log_likelihood_is_in_the_data_units(sequence_run):
    run, _, sequences, _ = sequence_run
    c = load_trained(run / "model.npz")
    held = runs.sequence_windows(c, sequences[3:])
    value = float(np.mean(conditional_log_likelihood(c, held)))
    reported = json.loads((run / "evaluation.json").read_text())["validation"]["log_likelihood"]
    assert reported == pytest.approx(value - np.log(c.standardization.scale["v"]).sum())


def test_sample_frames_writes_npy_png_or_a_summary(sequence_run, tmp_path, capsys):
    run, _, sequences, _ = sequence_run
    out = tmp_path / "frames.npy"
    assert main(["sample", str(run), "--frames", "7", "--gibbs-steps", "2", "-o", str(out)]) == 0
    frames = np.load(out)
    assert frames.shape == (7, 2) and abs(frames.mean() - 20) < 10  # the data's units, not the standardised 0
    assert "(7 frames of 2 channels after 3 seed frames (visible means, 2 Gibbs steps a frame))" in \
        capsys.readouterr().out
    c = load_trained(run / "model.npz")
    np.testing.assert_allclose(frames, runs.generate_frames(c, 7, sequences[0, :3], gibbs_steps=2))
    np.save(tmp_path / "seeds.npy", sequences[1:3, :5])
    assert main(["sample", str(run), "--frames", "4", "--seed-frames", str(tmp_path / "seeds.npy"), "--sample-frames",
                 "--gibbs-steps", "1", "-o", str(out)]) == 0
    assert np.load(out).shape == (2, 4, 2) and "sampled frames, 1 Gibbs steps a frame" in capsys.readouterr().out
    assert main(["sample", str(run), "--frames", "5", "--gibbs-steps", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "generated 5 frames of 2 channels after 3 seed frames (visible means, 1 Gibbs steps a frame):"
    assert printed[1].split() == ["channel", "mean", "std", "min", "max"] and len(printed) == 5
    pytest.importorskip("matplotlib")
    assert main(["sample", str(run), "--frames", "20", "--gibbs-steps", "1", "-o", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG


def test_eval_of_a_sequence_run(sequence_run, capsys):
    run, data, _, _ = sequence_run
    assert main(["eval", str(run), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"on {data} (4 sequences, 228 windows)" in out
    assert "nats per frame, data (228 windows; exact" in out and "persistence error" in out
    result = json.loads((run / "evaluation.json").read_text())
    assert result["data"]["rows"] == 228 and result["data"]["prediction_error"] > 0
    assert main(["eval", str(run), "--data", "oscillators:2,20"]) == 0  # the built-in set, sized to the model
    assert "(2 sequences, 34 windows)" in capsys.readouterr().out


def test_sample_clamps_the_past_of_a_sequence_model(sequence_run, tmp_path, capsys):
    run, _, sequences, _ = sequence_run
    c = load_trained(run / "model.npz")
    np.save(tmp_path / "past.npy", c.windows(sequences[0])["past"][:6])
    assert main(["sample", str(run), "--clamp", f"past={tmp_path / 'past.npy'}", "--steps", "3",
                 "-o", str(tmp_path / "next.npy")]) == 0
    assert np.load(tmp_path / "next.npy").shape == (6, 2)
    assert "(6 samples after 3 Gibbs steps with past clamped)" in capsys.readouterr().out
    assert main(["sample", str(run)]) == 1
    assert "is a sequence model: generate frames with --frames N, or give the past frames with --clamp past=" in \
        capsys.readouterr().err


def test_resume_a_sequence_run(sequence_run, tmp_path, capsys):
    run, data, _, _ = sequence_run
    copy = tmp_path / "run"
    common = ["train", "crbm", "--data", str(data), "--set", "nh=4", "--dtype", "float64", "--ais-runs", "0"]
    assert main(common + ["--epochs", "1", "-o", str(copy)]) == 0
    assert main(common + ["--epochs", "2", "--resume", str(copy)]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert len(json.loads((copy / "metrics.json").read_text())["history"]) == 2


def test_train_on_the_built_in_oscillators(tmp_path, capsys):
    assert main(["train", "crbm", "--data", "oscillators:3,40", "--set", "nv=3", "--set", "nh=2", "--epochs", "1",
                 "--batch-size", "500", "--no-standardize", "--validation-fraction", "0", "--ais-runs", "0",
                 "-o", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "batch size 500 is more than the 111 training windows: using 111" in out
    assert "on oscillators:3,40: 111 windows from 3 sequences; cd-1, 1 epochs" in out and "standardised" not in out
    assert "nats per frame, train (111 windows; exact" in out  # nothing held out: the training windows
    assert load_trained(tmp_path / "run" / "model.npz").standardization is None


@pytest.mark.parametrize("arguments, message", [
    (["train", "rbm", "--data", "oscillators"], "--data oscillators: sequences, for a sequence model"),
    (["train", "crbm", "--data", "bars"], "--data bars: rows, not sequences"),
    (["train", "crbm", "--data", "oscillators:2,3"], "sequences of 3 frames; model crbm (order 3) needs at least"),
    (["train", "crbm", "--data", "oscillators:2,40", "--labels", "v"], "--labels v: model crbm is a sequence model"),
    (["train", "crbm", "--data", "oscillators:2,40", "--raise-runs", "2"], "RAISE is not available for sequence"),
    (["train", "crbm", "--data", "oscillators:2,40", "--lr", "W=0.1"], "fit: lr gives no rate for A, B, a, b"),
    (["train", "crbm", "--data", "oscillators:2,40", "--validation-fraction", "0.9"], "leaves none to train on"),
])
def test_sequence_training_errors_are_one_line(tmp_path, capsys, arguments, message):
    assert main(arguments + ["--set", "nh=2", "-o", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_sequence_file_of_the_wrong_shape_is_one_line(tmp_path, capsys):
    np.save(tmp_path / "flat.npy", np.zeros(50))
    assert main(["train", "crbm", "--data", str(tmp_path / "flat.npy"), "-o", str(tmp_path / "run")]) == 1
    assert "shape (50,); sequences are one (T frames, C channels) or several (S, T, C)" in capsys.readouterr().err


def test_sample_frames_errors_are_one_line(sequence_run, tmp_path, capsys):
    run, _, _, _ = sequence_run
    np.save(tmp_path / "wide.npy", np.zeros((4, 3)))
    cases = [
        (["--frames", "0"], "--frames must be a positive integer, got 0"),
        (["--frames", "3", "-n", "2"], "--frames generates a sequence frame by frame: -n does not apply"),
        (["--frames", "3", "--gibbs-steps", "0"], "--gibbs-steps must be from 1 to 10000"),
        (["--gibbs-steps", "3"], "--gibbs-steps: only with --frames N"),
        (["--frames", "3", "--seed-frames", str(tmp_path / "wide.npy")], "seed frames are numbers of shape (T, 2)"),
        (["--frames", "3", "--seed-frames", str(tmp_path / "none.npy")], "none.npy: no such file"),
    ]
    for options, message in cases:
        assert main(["sample", str(run)] + options) == 1, options
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (options, err)


def test_frames_of_a_model_that_is_not_a_sequence_model(tmp_path, capsys):
    pgmdsl.load("rbm", nv=4, nh=2).compile().save(tmp_path / "model.npz")
    assert main(["sample", str(tmp_path), "--frames", "3"]) == 1
    assert "--frames: model rbm is not a sequence model" in capsys.readouterr().err


def test_a_plot_without_matplotlib_is_one_line(sequence_run, tmp_path, capsys, monkeypatch):
    import sys

    run, _, _, _ = sequence_run
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)  # as if matplotlib were missing
    assert main(["sample", str(run), "--frames", "3", "--gibbs-steps", "1", "-o", str(tmp_path / "f.png")]) == 1
    assert capsys.readouterr().err == "error: drawing PNG needs matplotlib: pip install 'pgmdsl[plot]'\n"
    assert main(["sample", str(run), "--frames", "3", "--gibbs-steps", "1", "-o", str(tmp_path / "f.npy")]) == 0


def test_a_crbm_trained_from_the_cli_generates_the_motion(tmp_path, capsys):
    """The sequence recipe's defaults, from the command line: 300 generated frames stay bounded, keep moving and
    keep the data's dominant period of 20 frames (the peak of the spectrum summed over channels)."""
    run = tmp_path / "motion"
    data = pgmdsl.datasets.oscillators(sequences=6, frames=300, channels=4, seed=2) * 3 + 1  # in its own units
    np.save(tmp_path / "motion.npy", data)
    assert main(["train", "crbm", "--data", str(tmp_path / "motion.npy"), "--set", "nh=8", "--ais-runs", "0",
                 "-o", str(run)]) == 0
    assert main(["sample", str(run), "--frames", "300", "--gibbs-steps", "20", "-o", str(tmp_path / "gen.npy")]) == 0
    frames = np.load(tmp_path / "gen.npy")
    assert frames.shape == (300, 4) and np.all(np.isfinite(frames))
    assert np.abs(frames - 1).max() < 2 * np.abs(data - 1).max() and frames.std(0).min() > 0.3 * data.std()
    power = (np.abs(np.fft.rfft(frames - frames.mean(0), axis=0)) ** 2).sum(1)
    peak = np.argmax(power[1:]) + 1  # within two frequency bins of the data's (300 / 20 = bin 15)
    assert abs(peak - 15) <= 2, len(frames) / peak
