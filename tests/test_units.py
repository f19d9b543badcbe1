"""The unit-type registry: every built-in type is an object registered through the public API,
and the stages that ask the object (derivation, code generation, sampling starts) treat an alias alike."""

from __future__ import annotations

import numpy as np
import pytest

import pgmdsl
from pgmdsl import resources, units

RBM = (resources.models_dir() / "rbm.dgm").read_text(encoding="utf-8")
GBRBM = (resources.models_dir() / "gbrbm.dgm").read_text(encoding="utf-8")


@pytest.fixture
def alias(monkeypatch):
    """Register an existing type under a new name for one test (the registry is process-wide)."""
    def register(existing: str, name: str):
        monkeypatch.setitem(units._REGISTRY, name, units.get(existing))
        units.register(units.get(existing), name)

    return register


def test_the_built_in_types_are_registered_objects():
    assert units.names() == ("binary", "spin", "gaussian", "onehot")
    for name in units.names():
        unit = units.get(name)
        assert isinstance(unit, units.UnitType) and unit.name == name
    assert units.get("gaussian").quadratic and not units.get("binary").quadratic
    assert units.get("nothing") is None


@pytest.mark.parametrize("name", ["", "2x", "_private", "a b", None])
def test_a_unit_type_name_must_be_an_identifier(name):
    with pytest.raises(ValueError, match="identifier"):
        units.register(units.get("binary"), name if name is not None else 3)


@pytest.mark.parametrize("text, existing, alias_name, layer, sizes", [
    (RBM, "binary", "bit", "h", dict(nv=5, nh=3)),
    (GBRBM, "gaussian", "normal_unit", "v", dict(nv=4, nh=3)),
])
def test_a_type_registered_under_a_second_name_gives_identical_results(alias, text, existing, alias_name, layer, sizes):
    alias(existing, alias_name)
    renamed = text.replace(f"{layer}[n{layer}]: {existing}", f"{layer}[n{layer}]: {alias_name}")
    assert renamed != text
    original = pgmdsl.parse(text, "m.dgm", **sizes).compile(cache=False, seed=1, dtype="float64")
    aliased = pgmdsl.parse(renamed, "m.dgm", **sizes).compile(cache=False, seed=1, dtype="float64")
    rng = np.random.default_rng(0)
    state = {n: rng.integers(0, 2, (4,) + tuple(info["shape"])).astype(float) for n, info in original.layers.items()}
    np.testing.assert_array_equal(aliased.energy(state), original.energy(state))
    np.testing.assert_array_equal(aliased.free_energy(state), original.free_energy(state))
    for name in original.sampled:
        np.testing.assert_array_equal(aliased.mean(name, state), original.mean(name, state))
        np.testing.assert_array_equal(aliased.sample_layer(name, state, np.random.default_rng(2)),
                                      original.sample_layer(name, state, np.random.default_rng(2)))
    np.testing.assert_array_equal(aliased.sample(3, steps=2, seed=5)[layer], original.sample(3, steps=2, seed=5)[layer])


@pytest.mark.parametrize("name", ["binary", "spin", "gaussian", "onehot"])
def test_a_random_start_lies_in_the_support(name):
    unit = units.get(name)
    start = unit.initial((50, 4), np.random.default_rng(0), np)
    assert start.shape == (50, 4)
    unit.check_data(start, "x")
    if unit.values is not None:
        assert set(np.unique(start)) == set(unit.values)
