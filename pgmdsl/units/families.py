"""Parametrised unit types: a family such as binomial(n) makes one UnitType per tuple of arguments.

A layer declared `h[nh]: binomial(4)` keeps the canonical string
"binomial(4)" in the IR and in the generated module's tables, so every stage
finds its unit type through the same `units.get` as a plain name. Each
instance is made once per (family, arguments) and cached: all stages ask the
one object, and a family registered under a second name (an alias) makes the
very same instances.
"""

from __future__ import annotations

import inspect
import re
from typing import Callable

from .base import UnitType

_FAMILIES: dict[str, Callable[..., UnitType]] = {}
_INSTANCES: dict[tuple, UnitType] = {}
_CANONICAL = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*\(\s*([0-9]+(?:\s*,\s*[0-9]+)*)?\s*\)\s*")


def register_family(name: str, make: Callable[..., UnitType]) -> Callable[..., UnitType]:
    """Make `name(a, ...)` usable in .dgm files: make(*positive_ints) returns the UnitType; returns `make`.

    Registering the same `make` under another name is an alias: both names
    give the same (cached) instance for the same arguments.
    """
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"a unit family's name must be an identifier not starting with '_', got {name!r}")
    if not callable(make):
        raise ValueError(f"unit family {name!r}: make must be callable, got {make!r}")
    _FAMILIES[name] = make
    return make


def family_names() -> tuple[str, ...]:
    return tuple(_FAMILIES)


def is_family(name: str) -> bool:
    return name in _FAMILIES


def usage(name: str) -> str:
    """How the family is written, from its maker's parameters: 'binomial(n)'."""
    return f"{name}({', '.join(_parameters(_FAMILIES[name]))})"


def canonical(name: str, args: tuple[int, ...]) -> str:
    """The form the IR keeps and `units.get` reads back: 'binomial(4)', 'f(2, 3)'."""
    return f"{name}({', '.join(str(int(a)) for a in args)})"


def instance(name: str, args: tuple[int, ...]) -> UnitType:
    """The unit type family `name` makes for `args`, made once; ValueError (a message for the user) if it cannot."""
    make = _FAMILIES.get(name)
    if make is None:
        raise ValueError(f"unknown unit family '{name}'")
    args = tuple(args)
    try:
        inspect.signature(make).bind(*args)
    except TypeError:
        count = len(_parameters(make))
        raise ValueError(f"unit type {usage(name)} takes {count} argument{'s' if count != 1 else ''}, "
                         f"got {len(args)}") from None
    except ValueError:  # a builtin without a signature: let make judge the arguments
        pass
    for arg in args:
        if isinstance(arg, bool) or not isinstance(arg, int) or arg <= 0:
            raise ValueError(f"the arguments of unit type {usage(name)} are positive integers, got {arg!r}")
    key = (make, args)
    if key not in _INSTANCES:
        unit = make(*args)
        if not isinstance(unit, UnitType):
            raise ValueError(f"unit family '{name}' made {type(unit).__name__}, not a UnitType")
        _INSTANCES[key] = unit
    return _INSTANCES[key]


def lookup(text: str) -> UnitType | None:
    """The instance named by a canonical form ('binomial(4)'), or None when it names none."""
    match = _CANONICAL.fullmatch(text)
    if match is None or match[1] not in _FAMILIES:
        return None
    try:  # int() refuses over 4300 digits: a ValueError too
        return instance(match[1], tuple(int(a) for a in match[2].split(",")) if match[2] else ())
    except ValueError:
        return None


def _parameters(make) -> tuple[str, ...]:
    try:
        return tuple(p.name for p in inspect.signature(make).parameters.values()
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    except (TypeError, ValueError):
        return ("...",)
