"""The command line: summaries, clean errors with exit status 1, drawings."""

import subprocess
import sys

import pytest

from pgmdsl.cli import main


def test_check_prints_the_summary(capsys):
    assert main(["check", "rbm", "--set", "nv=64", "--set", "nh=16"]) == 0
    out = capsys.readouterr().out
    assert "model rbm(nv=64, nh=16)" in out
    assert "W[64, 16] ~ normal(0, 0.01)  (1,024)" in out
    assert "gibbs schedule: {v} / {h}" in out


def test_check_reports_a_dsl_error_without_traceback(tmp_path):
    bad = tmp_path / "bad.dgm"
    bad.write_text("model bad()\nvisible v[3]: binary\nparam a[3] = 0\nenergy = -a[i] * h[i]\n")
    result = subprocess.run([sys.executable, "-m", "pgmdsl.cli", "check", str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{bad}:4:18: error: unknown name 'h'",
        "    energy = -a[i] * h[i]",
        "                     ^^^^",
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argument, message", [
    ("nv", "--set takes NAME=INTEGER, got 'nv'"),
    ("nv=x", "--set nv: 'x' is not an integer"),
])
def test_bad_set_arguments(capsys, argument, message):
    assert main(["check", "rbm", "--set", argument]) == 1
    assert message in capsys.readouterr().err


def test_unknown_model_lists_the_library(capsys):
    assert main(["check", "rbn"]) == 1
    err = capsys.readouterr().err
    assert "no such model file or standard-library model: 'rbn'" in err and "rbm" in err


def test_graph_writes_dot(tmp_path):
    out = tmp_path / "dbm.dot"
    assert main(["graph", "dbm", "-o", str(out)]) == 0
    dot = out.read_text()
    assert dot.startswith('graph "dbm" {')
    assert '"layer:h1" -- "term:h1_W2_h2";' in dot and '"layer:h2" -- "term:h1_W2_h2";' in dot
    assert 'label="v\\nbinary [784]"' in dot


def test_graph_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "mcrbm.png"
    assert main(["graph", "mcrbm", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_reports_a_derivation_error_at_its_term(tmp_path, capsys):
    """An energy the compiler cannot derive is reported by `check` (not only at compile), with file:line:column."""
    path = tmp_path / "unbounded.dgm"
    path.write_text("model unbounded(nv: int = 2, nh: int = 2)\nvisible v[nv]: gaussian\nhidden h[nh]: binary\n"
                    "param s[nv] = 0\nparam W[nv, nh] ~ normal(0, 0.1)\nenergy:\n    box: s[i] * v[i]^2 / 2\n"
                    "    vwh: -v[i]*W[i,j]*h[j]\n", encoding="utf-8")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:7:10: error: energy is not provably bounded below in gaussian layer v" in err
    assert "^^^" in err and "exp(log_sigma)" in err


def test_list_names_every_library_model_with_its_opening_sentence(capsys):
    from pgmdsl import resources
    from pgmdsl.cli import library_summary

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == resources.standard_models()
    assert any(line.startswith("rbm ") and line.endswith("Restricted Boltzmann machine with binary units.")
               for line in lines)
    recipe = {line.split()[0]: line.split()[1] for line in lines}  # the recipe pgmdsl train gives each model
    assert (recipe["rbm"], recipe["dbm"], recipe["dbm3"], recipe["dbn"], recipe["crbm"]) == (
        "default", "dbm", "dbm", "greedy", "sequence")
    assert library_summary("# One. Two.\n# Three\nmodel m()") == "One."
    assert library_summary("# No full stop\nmodel m()") == "No full stop"
    assert library_summary("model m()") == ""


def test_version_and_python_dash_m(capsys):
    import pgmdsl

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"pgmdsl {pgmdsl.__version__}"
    done = subprocess.run([sys.executable, "-m", "pgmdsl", "list"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("bm ")


def test_evaluations_show_progress_only_on_a_terminal(capsys):
    import numpy as np

    import pgmdsl
    from pgmdsl.cli import _interactive
    from pgmdsl.evaluate.report import evaluate

    assert _interactive() is False  # pytest captures stderr: not a terminal
    c = pgmdsl.load("rbm", nv=30, nh=30).compile()  # 2^30 states: log Z by AIS
    rows = (np.random.default_rng(0).random((20, 30)) < 0.5).astype(float)
    evaluate(c, {"train": rows}, ais_runs=4, distributions=50, force_exact=False, progress=False)
    assert "AIS" not in capsys.readouterr().err
    evaluate(c, {"train": rows}, ais_runs=4, distributions=50, progress=True)
    assert "AIS" in capsys.readouterr().err


def test_every_option_of_every_subcommand_has_help_text():
    import argparse

    from pgmdsl.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"train", "sample", "eval", "check", "cache", "sweep"} <= set(commands.choices)
    silent = [f"{name} {'/'.join(action.option_strings) or action.dest}"
              for name, sub in commands.choices.items() for action in sub._actions
              if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()]
    assert not silent, f"options without help text: {silent}"
