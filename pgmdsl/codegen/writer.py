"""Writing one generated function: names, temporaries, lets computed on first use."""

from __future__ import annotations

import re

from ..symbolic.kernels import Compute, Derivation
from ..symbolic.scalar import Atom
from .contract import ReductionWriter
from .text import comment_text

PREFIX = "_"


def variable(name: str) -> str:
    """The Python name of a model entity: its .dgm name behind a prefix no .dgm name can start with.

    The checker refuses names starting with "_", so a model's layers, params
    and lets live in a namespace of their own: a param called `field_h`, `xp`
    or `J_u_1` can neither shadow a generated function, a prelude kernel or a
    builtin nor collide with a temporary, which are all unprefixed.
    """
    return PREFIX + name


# Functions generated once per layer; a temporary must not take one of their names.
LAYER_FUNCTIONS = ("field", "coupling", "precision", "mean", "sample", "draw")


def module_functions(model) -> set[str]:
    """Names of the generated per-layer functions a body may call (field_h, precision_x, ...)."""
    return {f"{kind}_{layer.name}" for kind in LAYER_FUNCTIONS for layer in model.layers}


class FunctionWriter:
    """Collects a function's body; `array(atom)` names the array an atom reads."""

    def __init__(self, derivation: Derivation, printer, indent: str = "    "):
        self.derivation = derivation
        self.model = derivation.model
        self.printer = printer
        self.indent = indent
        self.body: list[str] = []
        self.params: dict[str, None] = {}
        self.layers: dict[str, None] = {}
        self.taken: set[str] = set(module_functions(self.model))
        self.computed: set[str] = set()
        self.reductions = ReductionWriter(self, printer)
        self.batched_patches = False  # whether a layer's rows are read into patch matrices (codegen.contract)
        self.fresh: dict[str, bool] = {}  # accumulated targets that are arrays of their own (written in place)

    def line(self, text: str) -> None:
        self.body.append(self.indent + text)

    def comment(self, text: str) -> None:
        """A comment line; the text (a summand, a file name) is escaped onto that one line."""
        self.line(f"# {comment_text(text)}")

    def temp(self, stem: str) -> str:
        number = 1
        while f"{stem}{number}" in self.taken:
            number += 1
        name = f"{stem}{number}"
        self.taken.add(name)
        return name

    def name(self, stem: str) -> str:
        """A readable local name (`field`, `energy`), numbered only if taken."""
        if stem not in self.taken:
            self.taken.add(stem)
            return stem
        return self.temp(stem)

    def array(self, atom: Atom) -> str:
        if atom.kind == "param":
            self.params[atom.name] = None
            return variable(atom.name)
        if atom.kind == "layer":
            self.layers[atom.name] = None
            return variable(atom.name)
        if atom.kind == "let":
            self.compute(self.derivation.lets[atom.name])
            return variable(atom.name)
        return atom.name

    def compute(self, compute: Compute, weights: str | None = None) -> str:
        """Lines assigning a Compute (a let or a temporary) once in this function."""
        target = variable(compute.name) if compute.name in {let.name for let in self.model.lets} else compute.name
        if compute.name in self.computed:
            return target
        self.computed.add(compute.name)
        self.taken.add(target)
        if compute.comment:
            self.comment(compute.comment)
        self.accumulate(target, compute.parts, weights)
        return target

    def accumulate(self, target: str, reductions, weights: str | None = None, comments: bool = False) -> None:
        """target = sum of the reductions, one statement each.

        When the first part is a fresh batched array of the whole shape (a matrix product's result: a field),
        the others are added into it in place: a convolved layer's field is millions of numbers, and a new
        array per bias term is a pass over memory more.
        """
        first, owned = True, False
        self.fresh[target] = False
        for reduction in reductions:
            if comments and reduction.form.label:
                self.comment(reduction.form.label)
            code = self.reductions.write(reduction, weights)
            if first:
                # a constant (let s = 0.5) as an array of the module's dtype: later code indexes and broadcasts it
                self.line(f"{target} = xp.asarray({code}, dtype=DTYPE)" if _is_number(code) else f"{target} = {code}")
                owned = reduction.batch == "keep" and reduction.batched and _fresh_product(code)
                self.fresh[target] = owned
                first = False
            elif owned:
                self.line(f"{target} -= {code[1:]}" if code.startswith("-") else f"{target} += {code}")
            elif code.startswith("-"):
                self.line(f"{target} = {target} - {code[1:]}")
            else:
                self.line(f"{target} = {target} + {code}")
        if first:
            self.line(f"{target} = xp.zeros((), dtype=DTYPE)")  # an array of the module's dtype, not the int 0

    def unpacking(self) -> list[str]:
        lines = []
        if self.params:
            names = list(self.params)
            lines.append(self.indent + ", ".join(variable(n) for n in names) + " = "
                         + ", ".join(f"p[{n!r}]" for n in names))
        if self.layers:
            names = list(self.layers)
            lines.append(self.indent + ", ".join(variable(n) for n in names) + " = "
                         + ", ".join(f"s[{n!r}]" for n in names))
        return lines


def _fresh_product(code: str) -> bool:
    """Whether code's value is a new array of its own: a matrix product, tensordot or einsum (perhaps negated,
    scaled or transposed), never an input or a view of one."""
    if re.fullmatch(r"folded\d+", code):  # fold's output (codegen.contract): a new array
        return True
    return any(token in code for token in (" @ ", "xp.tensordot(", "xp.einsum(")) and "broadcast_to" not in code


def _is_number(code: str) -> bool:
    """Whether generated code is a bare numeric literal."""
    try:
        float(code)
    except ValueError:
        return False
    return True
