"""Parameter initialisers and constraints, validated from a declared table."""

from __future__ import annotations

from .. import units
from ..errors import DSLError, DSLShapeError
from ..frontend import ast
from .constants import numeric_value
from .model import Initializer
from .names import suggestion

# name -> (drawn at random, number of arguments)
INITIALIZERS = {
    "normal": (True, 2),
    "uniform": (True, 2),
    "identity": (False, 0),
    "logit_mean": (False, 1),
}
CONSTRAINTS = ("symmetric", "zero_diagonal")


def build_initializer(param_def: ast.ParamDef, shape: tuple[int, ...], scope) -> Initializer:
    spec = param_def.init
    if spec is None:
        return Initializer("constant", (0.0,))
    node = spec.expr
    name = node.func if isinstance(node, ast.Call) else node.name if isinstance(node, ast.Name) else None
    unknown = name is not None and name not in INITIALIZERS and name not in scope.sizes
    if unknown and (isinstance(node, ast.Call) or scope.describe(name) is None):
        known = ", ".join(INITIALIZERS)
        raise DSLError(f"unknown initialiser '{name}' (known: {known}){suggestion(name, INITIALIZERS)}", node.span)
    if name not in INITIALIZERS:
        if spec.random:
            raise DSLError("'~' draws from a distribution: normal(mean, sd) or uniform(low, high)", node.span)
        return Initializer("constant", (float(numeric_value(node, scope.sizes, scope.describe)),))
    random, arity = INITIALIZERS[name]
    if random != spec.random:
        written, wrong = ("~", "=") if random else ("=", "~")
        what = "draws at random" if random else "is not random"
        raise DSLError(f"'{name}' {what}: write '{written} {name}', not '{wrong} {name}'", spec.span)
    args = node.args if isinstance(node, ast.Call) else ()
    if isinstance(node, ast.Call) and node.keywords:
        raise DSLError(f"initialiser '{name}' takes its arguments by position", node.keywords[0].span)
    if len(args) != arity and (isinstance(node, ast.Call) or arity):
        raise DSLError(f"initialiser '{name}' takes {arity} argument{'s' if arity != 1 else ''}, got {len(args)}", node.span)
    if name == "identity":
        if len(shape) != 2 or shape[0] != shape[1]:
            raise DSLShapeError(f"'identity' needs a square matrix; '{param_def.name.name}' has shape {shape}", node.span)
        return Initializer("identity", ())
    if name == "logit_mean":
        return _logit_mean(param_def, shape, args[0], scope)
    low, high = (numeric_value(a, scope.sizes, scope.describe) for a in args)
    if name == "normal" and high < 0:
        raise DSLError(f"normal(mean, sd) needs sd >= 0, got {high:g}", args[1].span)
    if name == "uniform" and not low < high:
        raise DSLError(f"uniform(low, high) needs low < high, got {low:g} and {high:g}", node.span)
    return Initializer(name, (float(low), float(high)))


def _logit_mean(param_def: ast.ParamDef, shape, arg: ast.Expr, scope) -> Initializer:
    if not isinstance(arg, ast.Name) or arg.name not in scope.layers:
        raise DSLError("logit_mean takes the name of a visible layer", arg.span)
    layer = scope.layers[arg.name]
    if layer.role != "visible" or layer.unit is None or units.get(layer.unit).values != (0, 1):
        raise DSLError(f"logit_mean needs a visible binary layer; '{layer.name}' is {layer.role} {layer.unit}", arg.span)
    if layer.shape != shape:
        raise DSLShapeError(
            f"logit_mean({layer.name}) has shape {layer.shape} but '{param_def.name.name}' has shape {shape}", arg.span
        )
    return Initializer("logit_mean", (layer.name,))


def check_constraints(param_def: ast.ParamDef, shape: tuple[int, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for ident in param_def.constraints:
        if ident.name not in CONSTRAINTS:
            raise DSLError(
                f"unknown constraint '{ident.name}' (known: {', '.join(CONSTRAINTS)}){suggestion(ident.name, CONSTRAINTS)}",
                ident.span,
            )
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise DSLShapeError(
                f"constraint '{ident.name}' needs a square matrix; '{param_def.name.name}' has shape {shape}", ident.span
            )
        if ident.name in names:
            raise DSLError(f"constraint '{ident.name}' is given twice", ident.span)
        names.append(ident.name)
    return tuple(names)
