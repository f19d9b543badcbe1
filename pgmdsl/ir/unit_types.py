"""A layer's unit type as written (`binary`, `binomial(4)`, `binomial(n)`) to the name the IR keeps.

A plain name must be registered (units.register); a family's arguments are
size expressions folded to positive integers, and the IR keeps the canonical
form ("binomial(4)") that units.get reads back, so no later stage parses
anything. Every refusal names the text at fault.
"""

from __future__ import annotations

from .. import units
from ..errors import DSLError, DSLShapeError
from ..frontend import ast
from ..units import families
from .constants import size_value
from .names import suggestion


def known_units() -> str:
    """The registered names and families, for messages: 'binary, spin, ..., binomial(n)'."""
    return ", ".join(list(units.names()) + [families.usage(f) for f in families.family_names()])


def unit_name(spec: ast.UnitSpec, sizes: dict[str, int], describe) -> str:
    """The checked unit type of a layer: its registered name, or the canonical 'family(args)'."""
    every = list(units.names()) + list(families.family_names())
    if spec.args is None:
        if units.get(spec.name) is not None:
            return spec.name
        if families.is_family(spec.name):
            raise DSLError(f"unit type '{spec.name}' takes arguments: write {families.usage(spec.name)}", spec.span)
        raise DSLError(f"unknown unit type '{spec.name}' (known: {known_units()}){suggestion(spec.name, every)}",
                       spec.name_span)
    if not families.is_family(spec.name):
        if units.get(spec.name) is not None:
            raise DSLError(f"unit type '{spec.name}' takes no arguments", spec.span)
        raise DSLError(f"unknown unit type '{spec.name}' (known: {known_units()}){suggestion(spec.name, every)}",
                       spec.name_span)
    args = []
    for number, arg in enumerate(spec.args, start=1):
        what = f"argument {number} of unit type {families.usage(spec.name)}"
        if isinstance(arg, ast.Number) and not isinstance(arg.value, int):
            raise DSLShapeError(f"{what} must be a positive integer, got {arg.value:g}", arg.span)
        args.append(size_value(arg, sizes, describe, what))
    try:
        families.instance(spec.name, tuple(args))
    except ValueError as error:
        raise DSLError(str(error), spec.span) from None
    return families.canonical(spec.name, tuple(args))
