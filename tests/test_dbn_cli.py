"""Deep belief networks from the command line and in one checkpoint: `pgmdsl train dbn` (greedy levels with
per-level options, --recipe updown), the stack's .npz holding every level, `sample` and `eval` through the
variational bound (checked against the exact log-likelihood on a tiny stack)."""

import json

import numpy as np
import pytest

import pgmdsl
from pgmdsl.cli import main
from pgmdsl.errors import DSLError
from pgmdsl.evaluate import exact_stack_log_likelihood, exact_log_z
from pgmdsl.runtime.checkpoint import load_trained
from pgmdsl.runtime.datasets import load_data
from pgmdsl.runtime.stack import CompiledStack
from archives import rewrite

SMALL = ["--set", "n1=6", "--set", "n2=4", "--set", "n3=5"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny DBN on digits, greedy then up-down, evaluated exactly (every hidden layer enumerable)."""
    directory = tmp_path_factory.mktemp("dbn") / "run"
    assert main(["train", "dbn", "--data", "digits-binary", *SMALL, "--epochs", "2,2,3", "--lr", "0.05,0.05,0.02",
                 "--recipe", "updown", "--finetune-epochs", "2", "-o", str(directory)]) == 0
    return directory


def test_train_runs_every_level_with_its_own_options_and_fine_tunes(run):
    info = json.loads((run / "metrics.json").read_text())
    assert info["recipe"] == "updown"
    assert [(level["epochs"], level["lr"]) for level in info["levels"]] == [(2, 0.05), (2, 0.05), (3, 0.02)]
    stages = [row["stage"] for row in info["history"]]
    assert stages == ["level 1"] * 2 + ["level 2"] * 2 + ["level 3"] * 3 + ["up-down"] * 2
    assert {p.name for p in run.iterdir()} >= {"model.npz", "metrics.csv", "evaluation.json"}


def test_one_checkpoint_holds_the_whole_stack_and_its_recognition_weights(run):
    stack = load_trained(run / "model.npz")
    assert isinstance(stack, CompiledStack) and len(stack.levels) == 3
    assert [level.model.arguments for level in stack.levels] == [{"nv": 64, "nh": 6}, {"nv": 6, "nh": 4},
                                                                 {"nv": 4, "nh": 5}]
    assert stack.recognition[0] is not None and stack.recognition[1] is not None and stack.recognition[2] is None
    assert not np.array_equal(stack.recognition[0]["W"], stack.levels[0].params["W"])  # up-down untied them


def test_eval_reports_a_bound_below_the_exact_log_likelihood(run, capsys):
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["log_z"]["method"] == "exact"
    for part in ("train", "validation"):
        assert evaluation[part]["log_likelihood_lower_bound"] < evaluation[part]["log_likelihood"]
    stack = load_trained(run / "model.npz")
    rows = load_data("digits-binary")[:50]
    exact = exact_stack_log_likelihood(stack, rows, exact_log_z(stack.levels[-1]))
    assert main(["eval", str(run), "--data", "digits-binary"]) == 0
    out = capsys.readouterr().out
    assert "log-likelihood >=" in out and "log-likelihood  " in out
    assert np.all(np.isfinite(exact))


def test_sample_draws_from_the_top_level_then_down(run, tmp_path, capsys):
    out = tmp_path / "s.npy"
    assert main(["sample", str(run), "-n", "5", "--steps", "20", "-o", str(out)]) == 0
    samples = np.load(out)
    assert samples.shape == (5, 64) and samples.min() >= 0 and samples.max() <= 1
    assert "then the top-down pass" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["sample", "RUN", "--mean"], "--mean: not available for stack dbn"),
    (["sample", "RUN", "--clamp", "v=x.npy"], "--clamp: not available for stack dbn"),
    (["eval", "RUN", "--data", "digits-binary", "--raise-runs", "3"], "--raise-runs: not available for stack dbn"),
])
def test_what_a_stack_cannot_do_is_one_line(run, capsys, arguments, message):
    assert main([str(run) if a == "RUN" else a for a in arguments]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("arguments, message", [
    (["--epochs", "1,2"], "--epochs: 2 values for the 3 levels of dbn"),
    (["--lr", "0.1,0.1,0.1,0.1"], "--lr: 4 values for the 3 levels"),
    (["--finetune-epochs", "3"], "recipe 'greedy' has no fine-tuning"),
    (["--labels", "v"], "--labels: not available for stack dbn"),
    (["--recipe", "dbm"], "--recipe dbm: recipe 'dbm' trains one model, not a stack"),
    (["--resume", "RUN"], "which trains again with --overwrite"),
])
def test_train_stack_errors_are_one_line(run, tmp_path, capsys, arguments, message):
    arguments = [str(run) if a == "RUN" else a for a in arguments]
    assert main(["train", "dbn", "--data", "digits-binary", *SMALL, *arguments, "-o", str(tmp_path / "new")]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()


def test_per_level_options_are_refused_for_one_model(tmp_path, capsys):
    assert main(["train", "rbm", "--data", "bars", "--epochs", "1,2", "-o", str(tmp_path / "r")]) == 1
    assert "one value per level is for stacks; rbm is one model" in capsys.readouterr().err


def test_a_stack_saved_from_python_loads_with_identical_levels(tmp_path):
    stack = pgmdsl.load("dbn", nv=5, n1=4, n2=3, n3=2).compile(dtype="float64", seed=1)
    rows = (np.random.default_rng(0).random((30, 5)) < 0.5).astype(float)
    stack.fit(rows, epochs=1, verbose=0)
    path = stack.save(tmp_path / "dbn.npz")
    loaded = load_trained(path)
    for saved, level in zip(stack.levels, loaded.levels):
        for name, value in saved.params.items():
            np.testing.assert_array_equal(level.params[name], value)
    assert loaded.recognition == [None, None, None]
    np.testing.assert_array_equal(loaded.transform(rows), stack.transform(rows))


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update({"param/3/W": np.zeros((2, 2))}), "belong to no level"),
    (lambda m: m.pop("param/1/W"), "parameter"),
    (lambda m: m.update({"param/0/W": np.zeros((2, 2))}), "parameter"),
])
def test_a_tampered_stack_checkpoint_is_refused_in_one_line(tmp_path, change, message):
    stack = pgmdsl.load("dbn", nv=5, n1=4, n2=3, n3=2).compile(dtype="float64")
    path = stack.save(tmp_path / "dbn.npz")
    rewrite(path, change)
    with pytest.raises(DSLError, match=message):
        load_trained(path)
