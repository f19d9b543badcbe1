"""The registry of unit types: what values a layer's units take, and everything the stages need to know of them.

A unit type is one registered object (units.base.UnitType); the built-in
types register themselves through the same public `register` a plug-in
calls, so a user's type in their own Python file is as good as ours.
"""

from __future__ import annotations

from .base import UnitType

_REGISTRY: dict[str, UnitType] = {}


def register(unit: UnitType, name: str | None = None) -> UnitType:
    """Make `unit` usable in .dgm files as `name` (default: its own name); returns it for chaining.

    Registering an object again under another name is an alias: layers of
    either name behave identically, since every stage asks the object.
    """
    key = unit.name if name is None else name
    if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
        raise ValueError(f"a unit type's name must be an identifier not starting with '_', got {key!r}")
    _REGISTRY[key] = unit
    return unit


def get(name: str) -> UnitType | None:
    """The unit type registered as `name`, or None."""
    return _REGISTRY.get(name)


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


from . import binary, spin, gaussian, onehot, relu  # noqa: E402,F401  (the built-in types register themselves)

__all__ = ["UnitType", "get", "names", "register"]
