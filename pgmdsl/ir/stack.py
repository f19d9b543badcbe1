"""`stack:` models (deep belief networks): a chain of models whose layers meet."""

from __future__ import annotations

from ..errors import DSLError, DSLNameError, DSLShapeError
from ..frontend import ast
from .constants import size_value
from .model import StackEntry
from .names import suggestion


def build_stack(model_def: ast.ModelDef, statements: dict, scope, file_scope, building: tuple[str, ...]):
    from .build import build_model

    stack_def = statements["stack"][0]
    if len(statements["stack"]) > 1:
        raise DSLError("a model has one stack", statements["stack"][1].span)
    if scope.layers or scope.params or statements["energy"] or scope.let_defs:
        raise DSLError(
            f"model '{model_def.name.name}' is a stack: it cannot also declare layers, parameters, lets or an energy",
            stack_def.span,
        )
    chain = building + (model_def.name.name,)
    entries = []
    for entry in stack_def.entries:
        name = entry.model.name
        if name not in file_scope.models:
            raise DSLNameError(f"unknown model '{name}'{suggestion(name, file_scope.models)}", entry.model.span)
        if name in chain:
            raise DSLError(f"model '{name}' stacks itself ({' -> '.join(chain + (name,))})", entry.model.span)
        target, target_scope = file_scope.models[name]
        sizes = _bind_arguments(entry, target, scope)
        built = build_model(target, target_scope, sizes, chain)
        if built.stack:
            raise DSLError(f"model '{name}' is itself a stack; stack its models directly", entry.model.span)
        entries.append(StackEntry(built, entry.span))
    for number, (lower, upper) in enumerate(zip(entries, entries[1:]), start=1):
        _check_meeting(lower, upper, number)
    return tuple(entries)


def _bind_arguments(entry: ast.StackEntry, target: ast.ModelDef, scope) -> dict[str, int]:
    declared = [p.name.name for p in target.size_params]
    if len(entry.args) > len(declared):
        raise DSLError(
            f"model '{target.name.name}' takes {len(declared)} sizes ({', '.join(declared)}), got {len(entry.args)}",
            entry.span,
        )
    bound = {}
    for name, value in zip(declared, entry.args):
        bound[name] = size_value(value, scope.sizes, scope.describe, f"size '{name}'")
    for keyword in entry.keywords:
        if keyword.name not in declared:
            raise DSLNameError(
                f"model '{target.name.name}' has no size '{keyword.name}'{suggestion(keyword.name, declared)}",
                keyword.span,
            )
        if keyword.name in bound:
            raise DSLError(f"size '{keyword.name}' is given twice", keyword.span)
        bound[keyword.name] = size_value(keyword.value, scope.sizes, scope.describe, f"size '{keyword.name}'")
    return bound


def _only(entry: StackEntry, role: str):
    layers = [layer for layer in entry.model.layers if layer.role == role]
    if len(layers) != 1:
        raise DSLError(
            f"a stacked model needs exactly one {role} layer; '{entry.model.name}' has {len(layers)}", entry.span
        )
    return layers[0]


def meeting_layer(model):
    """The layer a stacked model hands up: its hidden layer, or that layer's pooling layer when it is pooled
    (Lee et al.'s convolutional DBN stacks the next level on the pooling units)."""
    top = next(layer for layer in model.layers if layer.role == "hidden")
    return model.layer(top.pooling.into) if top.pooling else top


def _check_meeting(lower: StackEntry, upper: StackEntry, number: int) -> None:
    """Entry `number` (1-based) must end in a hidden (or pooling) layer shaped like the next one's visible layer."""
    _only(lower, "hidden")
    top, bottom = meeting_layer(lower.model), _only(upper, "visible")
    if top.shape != bottom.shape:
        kind = "pooling" if top.role == "pooled" else "hidden"
        raise DSLShapeError(
            f"stack layers disagree: entry {number} '{lower.model.name}' ends in {kind} layer {top.name} of shape "
            f"{_shape_text(top.shape)} but entry {number + 1} '{upper.model.name}' starts with visible layer "
            f"{bottom.name} of shape {_shape_text(bottom.shape)}",
            upper.span,
        )


def _shape_text(shape) -> str:
    return " x ".join(str(s) for s in shape)
