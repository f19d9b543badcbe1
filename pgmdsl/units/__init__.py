"""The registry of unit types: what values a layer's units take, and everything the stages need to know of them.

A unit type is one registered object (units.base.UnitType); the built-in
types register themselves through the same public `register` a plug-in
calls, so a user's type in their own Python file is as good as ours.
"""

from __future__ import annotations

from . import families
from .base import UnitType
from .families import register_family

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
    """The unit type registered as `name`, the instance a family makes for a canonical 'family(args)'
    ('binomial(4)': units.families), or None."""
    unit = _REGISTRY.get(name)
    if unit is None and isinstance(name, str) and "(" in name:
        return families.lookup(name)
    return unit


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


from . import binary, spin, gaussian, onehot, relu, binomial, truncexp  # noqa: E402,F401  (the built-in types register themselves)

__all__ = ["UnitType", "get", "names", "register", "register_family"]
