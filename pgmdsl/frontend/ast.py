"""The abstract syntax tree of a .dgm file, one frozen dataclass per construct.

Every node keeps the span of the text it came from; the IR builder reports
its semantic errors there.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..source import SourceSpan


# ---- expressions ---------------------------------------------------------

@dataclass(frozen=True)
class Number:
    value: int | float
    span: SourceSpan


@dataclass(frozen=True)
class Name:
    name: str
    span: SourceSpan


@dataclass(frozen=True)
class Indexed:
    name: str
    indices: tuple["Expr", ...]
    span: SourceSpan


@dataclass(frozen=True)
class KeywordArgument:
    name: str
    value: "Expr"
    span: SourceSpan


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple["Expr", ...]
    keywords: tuple[KeywordArgument, ...]
    span: SourceSpan


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / ^
    left: "Expr"
    right: "Expr"
    span: SourceSpan


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: SourceSpan


Expr = Number | Name | Indexed | Call | BinOp | Neg


# ---- statements ----------------------------------------------------------

@dataclass(frozen=True)
class Identifier:
    """A name as written where it is defined, with its own span."""

    name: str
    span: SourceSpan


@dataclass(frozen=True)
class Import:
    path: str
    span: SourceSpan


@dataclass(frozen=True)
class TermDef:
    name: Identifier
    params: tuple[Identifier, ...]
    body: Expr
    span: SourceSpan


@dataclass(frozen=True)
class SizeParam:
    name: Identifier
    type_name: Identifier
    default: Expr | None
    span: SourceSpan


@dataclass(frozen=True)
class LetDef:
    name: Identifier
    indices: tuple[Identifier, ...] | None  # None: a size or scalar let
    body: Expr
    span: SourceSpan


@dataclass(frozen=True)
class Pooling:
    sizes: tuple[Expr, ...]
    into: Identifier
    span: SourceSpan


@dataclass(frozen=True)
class UnitSpec:
    """A layer's unit type as written: a name (`binary`) or a family with arguments (`binomial(4)`)."""

    name: str
    args: tuple[Expr, ...] | None  # None: a plain name, no parentheses
    name_span: SourceSpan
    span: SourceSpan  # the whole spec, arguments included


@dataclass(frozen=True)
class LayerDef:
    role: str  # visible | hidden | input
    name: Identifier
    shape: tuple[Expr, ...]
    unit: UnitSpec | None
    pooling: Pooling | None
    span: SourceSpan


@dataclass(frozen=True)
class Initializer:
    random: bool  # `~ dist(...)` rather than `= value`
    expr: Expr
    span: SourceSpan


@dataclass(frozen=True)
class ParamDef:
    name: Identifier
    shape: tuple[Expr, ...]
    init: Initializer | None
    constraints: tuple[Identifier, ...]
    span: SourceSpan


@dataclass(frozen=True)
class NamedTerm:
    name: Identifier | None  # None when the energy is one expression
    expr: Expr
    span: SourceSpan


@dataclass(frozen=True)
class EnergyDef:
    terms: tuple[NamedTerm, ...]
    span: SourceSpan


@dataclass(frozen=True)
class StackEntry:
    model: Identifier
    args: tuple[Expr, ...]
    keywords: tuple[KeywordArgument, ...]
    span: SourceSpan


@dataclass(frozen=True)
class StackDef:
    entries: tuple[StackEntry, ...]
    span: SourceSpan


Statement = LetDef | LayerDef | ParamDef | EnergyDef | StackDef


@dataclass(frozen=True)
class ModelDef:
    name: Identifier
    size_params: tuple[SizeParam, ...]
    body: tuple[Statement, ...]
    span: SourceSpan


@dataclass(frozen=True)
class File:
    filename: str
    imports: tuple[Import, ...]
    terms: tuple[TermDef, ...]
    models: tuple[ModelDef, ...]
