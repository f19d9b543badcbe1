"""Progress bars: on a terminal or in a Jupyter kernel, never in a pipe (runtime.progress, one policy for all)."""

import sys
import types

import numpy as np

import pgmdsl
from pgmdsl.runtime import progress


class Terminal:
    """A stand-in stderr that says it is a terminal and keeps what is written."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text
        return len(text)

    def flush(self):
        pass


def test_training_shows_its_bar_on_a_terminal_and_nothing_in_a_pipe(monkeypatch, capsys):
    rows = (np.random.default_rng(0).random((30, 6)) < 0.5).astype(float)
    pgmdsl.load("rbm", nv=6, nh=3).compile().fit(rows, epochs=2)
    assert "training rbm" not in capsys.readouterr().err  # pytest's capture: a pipe
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    pgmdsl.load("rbm", nv=6, nh=3).compile().fit(rows, epochs=2)
    assert "training rbm" in terminal.text
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    pgmdsl.load("rbm", nv=6, nh=3).compile().fit(rows, epochs=2, verbose=0)
    assert "training rbm" not in quiet.text


def test_a_jupyter_kernel_counts_as_watched(monkeypatch):
    assert progress.interactive() is False  # under pytest
    kernel = type("ZMQInteractiveShell", (), {})()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel))
    assert progress.interactive() is True
    terminal_shell = type("TerminalInteractiveShell", (), {})()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: terminal_shell))
    assert progress.interactive() is False  # IPython in a pipe: its stderr decides
