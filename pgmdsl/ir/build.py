"""AST to ModelIR: resolve sizes and names, expand terms, check every index.

`build_model` is the one entry point. It raises a DSLError at the first
problem, always with the span of the construct at fault.
"""

from __future__ import annotations

import operator
import reprlib
from math import log10, prod

from ..errors import DSLError, DSLNameError, DSLShapeError
from ..frontend import ast
from .. import units
from .constants import size_value
from .initializers import build_initializer, check_constraints
from .model import EnergyTerm, Layer, Let, ModelIR, Pooling
from .names import check_identifier, suggestion
from .summands import Piece, SummandBuilder, split
from .unit_types import known_units, unit_name


class ModelScope:
    """The names of one model while it is being built (see summands.Scope)."""

    def __init__(self, terms: dict):
        self.terms = terms
        self.sizes: dict[str, int] = {}
        self.defined: dict[str, tuple[str, ast.Identifier]] = {}
        self.layers: dict[str, Layer] = {}
        self.params: dict = {}
        self.let_defs: dict[str, ast.LetDef] = {}
        self.lets: dict[str, Let] = {}
        self._building: list[str] = []
        self._depends: dict[str, bool] = {}
        self.summands = SummandBuilder(self)

    def define(self, ident: ast.Identifier, what: str) -> str:
        name = check_identifier(ident, what)
        if name in self.defined:
            first_what, first = self.defined[name]
            raise DSLNameError(
                f"duplicate name '{name}': already defined as a {first_what} at line {first.span.line}",
                ident.span,
            )
        self.defined[name] = (what, ident)
        return name

    # ---- the Scope protocol ----
    def kind(self, name: str) -> str | None:
        if name in self.layers:
            return "layer"
        if name in self.params:
            return "param"
        if name in self.let_defs:
            return "let"
        return None

    def shape(self, name: str) -> tuple[int, ...]:
        if name in self.layers:
            return self.layers[name].shape
        if name in self.params:
            return self.params[name].shape
        return self.let(name).shape

    def depends_on_layers(self, name: str) -> bool:
        if name in self.layers:
            return True
        if name not in self.let_defs:
            return False
        if name not in self._depends:  # cached: chains of lets would otherwise cost exponential time
            self._depends[name] = any(
                self.depends_on_layers(ref.name) for s in self.let(name).summands for ref in s.refs()
            )
        return self._depends[name]

    def describe(self, name: str) -> str | None:
        if name in self.defined:
            what = self.defined[name][0]
            return f"an {what}" if what[0] in "aeiou" else f"a {what}"
        if name in self.terms:
            return "a term"
        return None

    def known_names(self) -> list[str]:
        return list(self.defined) + list(self.sizes)

    # ---- lets, built on first use so they may refer to each other in any order ----
    def let(self, name: str) -> Let:
        if name in self.lets:
            return self.lets[name]
        definition = self.let_defs[name]
        if name in self._building:
            chain = " -> ".join(self._building[self._building.index(name):] + [name])
            raise DSLError(f"let '{name}' is defined in terms of itself ({chain})", definition.name.span)
        if len(self._building) >= MAX_NESTING:
            raise DSLError(
                f"lets nested too deeply: '{self._building[0]}' goes through more than {MAX_NESTING} lets, "
                "each defined by the next",
                self.let_defs[self._building[0]].name.span,
            )
        self._building.append(name)
        try:
            self.lets[name] = _build_let(definition, self)
        finally:
            self._building.pop()
        return self.lets[name]


# How many lets, sizes or term calls may stand one inside the other. Real
# models use two or three; the limit keeps the recursive stages far from
# Python's recursion limit (with the parser's limit on expression depth).
MAX_NESTING = 32


def build_model(model_def: ast.ModelDef, file_scope, overrides: dict[str, int], building: tuple[str, ...] = ()) -> ModelIR:
    """Build the IR of one model with its size parameters set from `overrides` and defaults."""
    if building:
        return _build_model(model_def, file_scope, overrides, building)
    try:
        return _build_model(model_def, file_scope, overrides, building)
    except RecursionError:
        # A last resort: the limits above make this unlikely, but a file must never crash the compiler.
        raise DSLError(
            f"model '{model_def.name.name}' is nested too deeply to compile: "
            "split long expressions and chains of lets or terms",
            model_def.name.span,
        ) from None


def _build_model(model_def: ast.ModelDef, file_scope, overrides: dict[str, int], building: tuple[str, ...]) -> ModelIR:
    from .stack import build_stack  # a stack builds its entries with build_model

    scope = ModelScope(file_scope.terms)
    check_identifier(model_def.name, "model")
    _bind_sizes(model_def, scope, overrides)
    statements = _declare(model_def, scope)
    _evaluate_size_lets(statements["size_lets"], scope)
    for layer_def in statements["layers"]:
        _add_layer(layer_def, scope)
    for param_def in statements["params"]:
        scope.params[param_def.name.name] = _build_param(param_def, scope)
    stack = ()
    if statements["stack"]:
        stack = build_stack(model_def, statements, scope, file_scope, building)
        terms = ()
    else:
        terms = _build_energy(model_def, statements["energy"], scope)
        for name in scope.let_defs:
            scope.let(name)
        _check_all_used(scope, terms, model_def)
    return ModelIR(
        name=model_def.name.name,
        filename=model_def.span.filename,
        source=model_def.span.source.text,
        sizes=tuple(scope.sizes.items()),
        layers=tuple(scope.layers.values()),
        params=tuple(scope.params.values()),
        lets=tuple(scope.lets[name] for name in scope.let_defs),
        terms=terms,
        stack=stack,
        span=model_def.name.span,
        arguments=tuple(p.name.name for p in model_def.size_params),
    )


def _bind_sizes(model_def: ast.ModelDef, scope: ModelScope, overrides: dict[str, int]) -> None:
    declared = [p.name.name for p in model_def.size_params]
    for name in overrides:
        if name not in declared:
            listed = ", ".join(declared) or "none"
            raise DSLNameError(
                f"model '{model_def.name.name}' has no size '{name}' (its sizes: {listed}){suggestion(name, declared)}",
                model_def.name.span,
            )
    for param in model_def.size_params:
        name = scope.define(param.name, "size")
        if param.type_name.name != "int":
            raise DSLError(f"unknown size type '{param.type_name.name}': sizes are 'int'", param.type_name.span)
        if name in overrides:
            value = _override(name, overrides[name], param.name.span)
        elif param.default is None:
            raise DSLError(f"size '{name}' has no default: give it a value", param.name.span)
        else:
            value = size_value(param.default, scope.sizes, scope.describe, f"size '{name}'")
        scope.sizes[name] = _bounded(name, value, param.name.span)


def _override(name: str, value, span) -> int:
    """A size given from Python or the command line: a positive integer (numpy's too), never a bool or str."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number <= 0:
        shown = _amount(value) if isinstance(value, int) and not isinstance(value, bool) else reprlib.repr(value)
        raise DSLShapeError(f"size '{name}' must be a positive integer, got {shown}", span)
    return number


# Largest size: no axis can be longer than a tensor may be large, and the bound keeps size arithmetic finite
# (a chain of size lets, each squaring the one before, would otherwise grow numbers until memory runs out).
MAX_SIZE = 2**31


def _bounded(name: str, value: int, span) -> int:
    if value > MAX_SIZE:
        raise DSLShapeError(f"size '{name}' is {_amount(value)}, more than the 2^31 allowed: check the sizes", span)
    return value


def _amount(number: int) -> str:
    """An integer for a message: in full with thousands separators, or its order of magnitude when huge
    (Python refuses to print integers of over 4300 digits)."""
    if abs(number) < 10**30:
        return f"{number:,}"
    return f"about {'-' if number < 0 else ''}10^{int(log10(abs(number)))}"


def _declare(model_def: ast.ModelDef, scope: ModelScope) -> dict:
    """Define every name of the model body and sort its statements by kind."""
    found = {"size_lets": [], "layers": [], "params": [], "energy": [], "stack": []}
    for statement in model_def.body:
        if isinstance(statement, ast.LetDef):
            if _is_size_let(statement, model_def):
                scope.define(statement.name, "size")
                found["size_lets"].append(statement)
            else:
                scope.let_defs[scope.define(statement.name, "let")] = statement
        elif isinstance(statement, ast.LayerDef):
            scope.define(statement.name, "layer")
            if statement.pooling is not None:
                scope.define(statement.pooling.into, "layer")
            found["layers"].append(statement)
        elif isinstance(statement, ast.ParamDef):
            scope.define(statement.name, "parameter")
            found["params"].append(statement)
        elif isinstance(statement, ast.EnergyDef):
            found["energy"].append(statement)
        else:
            found["stack"].append(statement)
    return found


def _is_size_let(let_def: ast.LetDef, model_def: ast.ModelDef) -> bool:
    """A let without indices made only of integers and names that are not tensors is a size."""
    if let_def.indices is not None:
        return False
    tensors = {
        s.name.name for s in model_def.body if isinstance(s, (ast.LayerDef, ast.ParamDef))
    } | {s.pooling.into.name for s in model_def.body if isinstance(s, ast.LayerDef) and s.pooling}
    tensors |= {s.name.name for s in model_def.body if isinstance(s, ast.LetDef) and s.indices is not None}

    def integral(node) -> bool:
        if isinstance(node, ast.Number):
            return isinstance(node.value, int)
        if isinstance(node, ast.Name):
            return node.name not in tensors
        if isinstance(node, ast.Neg):
            return integral(node.operand)
        if isinstance(node, ast.BinOp):
            return node.op in "+-*/" and integral(node.left) and integral(node.right)
        return False

    return integral(let_def.body)


def _evaluate_size_lets(size_lets: list[ast.LetDef], scope: ModelScope) -> None:
    pending = {d.name.name: d for d in size_lets}
    evaluating: list[str] = []

    def describe(name: str) -> str | None:
        if name in pending:
            evaluate(pending[name])
            return None
        return scope.describe(name)

    def evaluate(definition: ast.LetDef) -> None:
        name = definition.name.name
        if name in scope.sizes:
            return
        if name in evaluating:
            raise DSLError(f"size '{name}' is defined in terms of itself", definition.name.span)
        if len(evaluating) >= MAX_NESTING:
            raise DSLError(
                f"sizes nested too deeply: '{evaluating[0]}' goes through more than {MAX_NESTING} sizes, "
                "each defined by the next",
                pending[evaluating[0]].name.span,
            )
        evaluating.append(name)
        value = _size_with_lets(definition.body, scope, describe, f"size '{name}'")
        scope.sizes[name] = _bounded(name, value, definition.name.span)
        evaluating.pop()

    for definition in size_lets:
        evaluate(definition)


def _size_with_lets(node: ast.Expr, scope: ModelScope, describe, what: str) -> int:
    """size_value, evaluating size lets that `node` refers to first."""
    for name in _names(node):
        if name not in scope.sizes:
            describe(name)
    return size_value(node, scope.sizes, scope.describe, what)


def _names(node) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.name]
    if isinstance(node, ast.BinOp):
        return _names(node.left) + _names(node.right)
    if isinstance(node, ast.Neg):
        return _names(node.operand)
    return []


# Most entries a layer or parameter may have: 2^31 (8 GiB of float32 for one parameter). Larger ones are
# almost always a mistyped size, and would otherwise end in a MemoryError or a swapping machine at compile time.
MAX_ENTRIES = 2**31


def _shape(exprs: tuple[ast.Expr, ...], scope: ModelScope, owner: str) -> tuple[int, ...]:
    shape = tuple(
        size_value(e, scope.sizes, scope.describe, f"axis {axis + 1} of {owner}")
        for axis, e in enumerate(exprs)
    )
    entries = prod(shape)
    if entries > MAX_ENTRIES:
        raise DSLShapeError(f"'{owner}' would have {_amount(entries)} entries (shape {shape}), "
                            "more than the 2^31 allowed: check the sizes", exprs[0].span)
    return shape


def _add_layer(layer_def: ast.LayerDef, scope: ModelScope) -> None:
    name = layer_def.name.name
    shape = _shape(layer_def.shape, scope, name)
    unit = unit_name(layer_def.unit, scope.sizes, scope.describe) if layer_def.unit else None
    if unit is None and layer_def.role != "input":
        raise DSLError(
            f"{layer_def.role} layer '{name}' needs a unit type ({known_units()})",
            layer_def.name.span,
        )
    pooling = _pooling(layer_def, shape, unit, scope) if layer_def.pooling else None
    scope.layers[name] = Layer(name, layer_def.role, unit, shape, layer_def.name.span, pooling)
    if pooling is not None:
        pooled_shape = shape[: len(shape) - len(pooling.block)] + tuple(
            extent // block for extent, block in zip(shape[len(shape) - len(pooling.block):], pooling.block)
        )
        scope.layers[pooling.into] = Layer(
            pooling.into, "pooled", unit, pooled_shape, layer_def.pooling.into.span, pooled_from=name
        )


def _pooling(layer_def: ast.LayerDef, shape, unit, scope: ModelScope) -> Pooling:
    name = layer_def.name.name
    spec = layer_def.pooling
    if layer_def.role != "hidden" or unit is None or units.get(unit).values != (0, 1):
        raise DSLError(f"only a hidden binary layer can be pooled; '{name}' is {layer_def.role} {unit}", spec.span)
    block = tuple(size_value(s, scope.sizes, scope.describe, "pool size") for s in spec.sizes)
    if len(block) == 1 and len(shape) >= 2:
        block = block * 2
    if len(block) > len(shape):
        raise DSLShapeError(f"layer '{name}' has {len(shape)} axes, too few to pool over {len(block)}", spec.span)
    first = len(shape) - len(block)
    for axis, (extent, size) in enumerate(zip(shape[first:], block), start=first + 1):
        if extent % size:
            raise DSLShapeError(
                f"pool size {size} does not divide axis {axis} of layer '{name}' (size {extent})", spec.span
            )
    return Pooling(block, spec.into.name)


def _build_param(param_def: ast.ParamDef, scope: ModelScope):
    from .model import Param

    name = param_def.name.name
    shape = _shape(param_def.shape, scope, name)
    init = build_initializer(param_def, shape, scope)
    constraints = check_constraints(param_def, shape)
    return Param(name, shape, init, constraints, param_def.name.span)


def _build_let(definition: ast.LetDef, scope: ModelScope) -> Let:
    name = definition.name.name
    free = ()
    if definition.indices is not None:
        free = tuple(check_identifier(i, "index") for i in definition.indices)
        seen = set()
        for ident in definition.indices:
            if ident.name in seen:
                raise DSLError(f"index '{ident.name}' appears twice on the left of let '{name}'", ident.span)
            seen.add(ident.name)
    pieces = split(definition.body, scope)
    for piece in pieces:
        if piece.via:
            raise DSLError("a term can only be called in the energy, not in a let", piece.call_span)
    summands = tuple(scope.summands.build(piece, free, energy=False) for piece in pieces)
    shape = []
    for ident in definition.indices or ():
        extent = next((dict(s.extents).get(ident.name) for s in summands if ident.name in dict(s.extents)), None)
        if extent is None:
            raise DSLShapeError(f"index '{ident.name}' of let '{name}' does not appear on its right-hand side", ident.span)
        for summand in summands:
            other = dict(summand.extents).get(ident.name)
            if other is not None and other != extent:
                raise DSLShapeError(
                    f"index '{ident.name}' of let '{name}' runs over {extent} values in one summand and {other} in another",
                    summand.span,
                )
        shape.append(extent)
    for summand in summands:
        scope.summands.check_let_summand(summand)
    return Let(name, free, tuple(shape), summands, definition.name.span)


def _build_energy(model_def: ast.ModelDef, energies: list[ast.EnergyDef], scope: ModelScope) -> tuple[EnergyTerm, ...]:
    if not energies:
        raise DSLError(f"model '{model_def.name.name}' has no energy", model_def.name.span)
    if len(energies) > 1:
        raise DSLError(f"a model has one energy; the first is at line {energies[0].span.line}", energies[1].span)
    if not any(layer.role == "visible" for layer in scope.layers.values()):
        raise DSLError(f"model '{model_def.name.name}' has no visible layer", model_def.name.span)
    terms: list[EnergyTerm] = []
    names: dict[str, ast.Identifier] = {}
    for named in energies[0].terms:
        pieces = split(named.expr, scope)
        if named.name is None:
            for piece in pieces:
                summand = scope.summands.build(piece)
                term_name = _unique(_auto_name(piece, summand), names)
                terms.append(EnergyTerm(term_name, (summand,), piece.expr.span, piece.via[0] if piece.via else None))
            continue
        name = check_identifier(named.name, "energy term")
        if name in names:
            raise DSLNameError(f"duplicate energy term '{name}': already at line {names[name].span.line}", named.name.span)
        names[name] = named.name
        summands = tuple(scope.summands.build(piece) for piece in pieces)
        via = pieces[0].via[0] if pieces and pieces[0].via and all(p.via for p in pieces) else None
        terms.append(EnergyTerm(name, summands, named.name.span, via))
    return tuple(terms)


def _auto_name(piece: Piece, summand) -> str:
    if piece.via:
        return piece.via[0]
    parts: list[str] = []
    for ref in summand.refs():
        if ref.name not in parts:
            parts.append(ref.name)
    return "_".join(parts) or "constant"


def _unique(name: str, taken: dict) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    taken[candidate] = None
    return candidate


def _check_all_used(scope: ModelScope, terms, model_def: ast.ModelDef) -> None:
    used: set[str] = set()

    def visit(summands) -> None:
        for summand in summands:
            for ref in summand.refs():
                if ref.name not in used:
                    used.add(ref.name)
                    if ref.kind == "let":
                        visit(scope.lets[ref.name].summands)

    for term in terms:
        visit(term.summands)
    for layer in scope.layers.values():
        if layer.role != "pooled" and layer.name not in used and not (layer.pooling and layer.pooling.into in used):
            raise DSLError(f"layer '{layer.name}' does not appear in the energy", layer.span)
    for param in scope.params.values():
        if param.name not in used:
            raise DSLError(f"parameter '{param.name}' does not appear in the energy", param.span)
    for let in scope.lets.values():
        if let.name not in used:
            raise DSLError(f"let '{let.name}' is never used in the energy", let.span)
