"""The public Python API: what `import pgmdsl` offers, a docstring on every public name, History's exports."""

import csv
import inspect
import sys

import numpy as np
import pytest

import pgmdsl
import pgmdsl.evaluate
import pgmdsl.sklearn
from pgmdsl.errors import DSLError
from pgmdsl.runtime.train import History


def public(module):
    for name in module.__all__:
        value = getattr(module, name)
        if name.startswith("__") or not callable(value):
            continue
        yield f"{module.__name__}.{name}", value
        if inspect.isclass(value):
            for attribute, member in vars(value).items():
                if not attribute.startswith("_") and (callable(member) or isinstance(member, property)):
                    yield f"{module.__name__}.{name}.{attribute}", member


@pytest.mark.parametrize("module", [pgmdsl, pgmdsl.evaluate, pgmdsl.sklearn])
def test_every_public_name_has_a_docstring(module):
    missing = [name for name, value in public(module) if not (inspect.getdoc(value) or "").strip()]
    assert not missing, missing


def test_the_compiled_classes_are_exported_at_the_top_level():
    c = pgmdsl.load("rbm", nv=4, nh=2).compile()
    assert isinstance(c, pgmdsl.Compiled)
    assert isinstance(pgmdsl.load("dbn", nv=4, n1=3, n2=2, n3=2).compile(), pgmdsl.CompiledStack)
    assert isinstance(c.fit(np.ones((4, 4)), epochs=1, verbose=0), pgmdsl.History)


def test_the_package_says_it_is_typed():
    from pathlib import Path

    assert (Path(pgmdsl.__file__).parent / "py.typed").is_file()


def test_history_to_csv_writes_every_metric_of_every_epoch(tmp_path):
    history = History([{"epoch": 1, "lr": 0.1, "reconstruction": 0.5},
                       {"epoch": 2, "lr": 0.1, "reconstruction": 0.25, "swap_rate": 0.3}])
    path = history.to_csv(tmp_path / "h.csv")
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["reconstruction"] for row in rows] == ["0.5", "0.25"]
    assert rows[0]["swap_rate"] == "" and rows[1]["swap_rate"] == "0.3"
    assert history.columns() == ["epoch", "lr", "reconstruction", "swap_rate"]


def test_history_to_pandas_indexes_by_epoch_or_says_what_to_install(monkeypatch):
    history = History([{"epoch": 1, "reconstruction": 0.5}, {"epoch": 2, "reconstruction": 0.25}])
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(DSLError, match="pip install pandas"):
            history.to_pandas()
        return
    frame = history.to_pandas()
    assert list(frame.index) == [1, 2] and list(frame["reconstruction"]) == [0.5, 0.25]
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(DSLError, match="pip install pandas"):
        history.to_pandas()


def test_fit_lists_every_training_option_in_its_signature_with_the_same_default():
    from dataclasses import fields

    from pgmdsl.runtime.options import TrainingOptions

    signature = inspect.signature(pgmdsl.Compiled.fit).parameters
    for field in fields(TrainingOptions):
        assert field.name in signature, field.name
        assert signature[field.name].default == field.default, field.name
