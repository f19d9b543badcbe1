"""Writing one generated function: names, temporaries, lets computed on first use."""

from __future__ import annotations

import builtins
import keyword

from ..symbolic.kernels import Compute, Derivation
from ..symbolic.scalar import Atom
from .contract import ReductionWriter

RESERVED = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | {
    "xp", "p", "s", "w", "rng", "DTYPE", "sigmoid", "softplus", "log2cosh", "logsumexp", "softmax",
    "bernoulli", "spins", "categorical", "unfold", "fold", "sliding_window_view", "energy", "field",
    "state", "unit", "mean", "result", "precision", "statistics", "anneal", "tempered", "bernoulli_logit",
    "beta", "offset", "units", "index", "product", "batch_size", "draw", "coupling", "diagonal",
}


def variable(name: str) -> str:
    """The Python name of a model entity (validated by the IR; reserved words get a trailing _)."""
    return f"{name}_" if name in RESERVED else name


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
        self.taken = {variable(n) for n in self._model_names()} | RESERVED
        self.computed: set[str] = set()
        self.reductions = ReductionWriter(self, printer)

    def _model_names(self):
        yield from (layer.name for layer in self.model.layers)
        yield from (param.name for param in self.model.params)
        yield from (let.name for let in self.model.lets)

    def line(self, text: str) -> None:
        self.body.append(self.indent + text)

    def comment(self, text: str) -> None:
        self.line(f"# {text}")

    def temp(self, stem: str) -> str:
        number = 1
        while f"{stem}{number}" in self.taken:
            number += 1
        name = f"{stem}{number}"
        self.taken.add(name)
        return name

    def name(self, stem: str) -> str:
        """A readable local name (`field`, `energy`), numbered only if taken."""
        if stem not in self.taken - RESERVED and stem not in {variable(n) for n in self._model_names()}:
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
        target = compute.name if compute.name not in {l.name for l in self.model.lets} else variable(compute.name)
        if compute.name in self.computed:
            return target
        self.computed.add(compute.name)
        self.taken.add(target)
        if compute.comment:
            self.comment(compute.comment)
        self.accumulate(target, compute.parts, weights)
        return target

    def accumulate(self, target: str, reductions, weights: str | None = None, comments: bool = False) -> None:
        """target = sum of the reductions, one statement each."""
        first = True
        for reduction in reductions:
            if comments and reduction.form.label:
                self.comment(reduction.form.label)
            code = self.reductions.write(reduction, weights)
            if first:
                self.line(f"{target} = {code}")
                first = False
            elif code.startswith("-"):
                self.line(f"{target} = {target} - {code[1:]}")
            else:
                self.line(f"{target} = {target} + {code}")
        if first:
            self.line(f"{target} = 0")

    def unpacking(self) -> list[str]:
        lines = []
        if self.params:
            names = list(self.params)
            lines.append(self.indent + ", ".join(variable(n) for n in names) + (" =" if len(names) > 1 else " =")
                         + " " + ", ".join(f'p["{n}"]' for n in names))
        if self.layers:
            names = list(self.layers)
            lines.append(self.indent + ", ".join(variable(n) for n in names) + " = "
                         + ", ".join(f's["{n}"]' for n in names))
        return lines
