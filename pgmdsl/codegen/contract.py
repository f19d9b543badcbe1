"""Reductions to array code: unfold affine reads, multiply, contract, fold.

A reduction `out[o] = sum_rest expr(atoms)` is split into its numeric
coefficient and factors. Each factor is an array over some indices: an atom
(unfolded into sliding windows when read at affine indices), a power of one,
or an elementwise expression over the union of its atoms' indices. The
factors are contracted pairwise in an order chosen here, at compile time
(smallest intermediate first), each pair printed as a matrix product,
tensordot or einsum. An output at affine indices (the field of a convolved
layer) is folded back: the adjoint of the unfold.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import sympy

from ..errors import DSLUnsupportedError
from ..ir.expr import Affine
from ..symbolic.kernels import Reduction
from ..symbolic.scalar import Atom

BATCH = "#batch"
BATCH_SIZE = 100  # a typical batch, for planning the contraction order


@dataclass
class Operand:
    code: str
    indices: tuple[str, ...]


def axis_spec(affine: Affine, extents: dict[str, int]):
    """How one axis is read: None (plain), ("at", k), ("slice", off, stride, count) or a window."""
    if affine.plain is not None:
        return None, (affine.plain,), ()
    terms = list(affine.terms)
    if not terms:
        return ("at", affine.offset), (), ()
    if len(terms) == 1 and terms[0][1] > 0:
        name, stride = terms[0]
        return ("slice", affine.offset, stride, extents[name]), (name,), ()
    if len(terms) == 2 and all(c > 0 for _, c in terms) and any(c == 1 for _, c in terms):
        unit = [t for t in terms if t[1] == 1]
        window = min(unit, key=lambda t: extents[t[0]]) if len(unit) == 2 else unit[0]
        outer = next(t for t in terms if t is not window)
        spec = ("window", affine.offset, outer[1], extents[outer[0]], extents[window[0]])
        return spec, (outer[0],), (window[0],)
    raise DSLUnsupportedError(f"index expression '{affine}' is not supported: use i + j, 2*i + j or i + constant")


def layout(indices: tuple[Affine, ...], extents: dict[str, int]):
    """Specs of every axis and the index names of the unfolded array, in order."""
    specs, outer, windows = [], [], []
    for affine in indices:
        spec, names, window = axis_spec(affine, extents)
        specs.append(spec)
        outer.extend(names)
        windows.extend(window)
    return tuple(specs), tuple(outer) + tuple(windows)


class ReductionWriter:
    """Writes the lines that compute one reduction into a function body."""

    def __init__(self, function, printer):
        self.function = function  # has .line(text), .temp(stem) and .array(atom) -> code
        self.printer = printer

    def write(self, reduction: Reduction, weights: str | None = None) -> str:
        """Lines for the reduction; returns the code of the result (batch axis first if kept)."""
        form = reduction.form
        extents = dict(form.extents)
        extents[BATCH] = BATCH_SIZE
        for affine, size in zip(reduction.output, reduction.shape):
            if affine.plain is not None:  # a summand without that index (a constant in a let) spreads over it
                extents.setdefault(affine.plain, size)
        coefficient, rest = sympy.factor_terms(form.expr).as_coeff_Mul()
        factors = [] if rest == 1 else list(sympy.Mul.make_args(rest))
        operands = [self._factor(f, form.atoms, extents) for f in factors]
        constant = sympy.Integer(1)
        kept_operands = []
        for operand, factor in zip(operands, factors):
            if operand is None:
                constant *= factor
            else:
                kept_operands.append(operand)
        specs, out_names = layout(reduction.output, extents)
        batched = any(BATCH in op.indices for op in kept_operands)
        output = ((BATCH,) if batched and reduction.batch == "keep" else ()) + out_names
        if reduction.batch == "sum" and batched:
            kept_operands.append(Operand(weights, (BATCH,)))
        present = tuple(n for n in output if any(n in op.indices for op in kept_operands))
        if kept_operands and present != output:
            # spread along the axes the summand does not mention: a field or statistic has its layer's full
            # shape (a length-1 axis would broadcast in arithmetic but give means of the wrong shape), and a
            # folded output needs every axis
            for name in out_names:
                if name not in present:
                    kept_operands.append(Operand(f"xp.ones({extents[name]}, dtype=DTYPE)", (name,)))
            present = output
        code = self._contract(kept_operands, present, extents)
        multiplicity = prod(extents[n] for n in form.extents if n not in output and not any(n in o.indices for o in kept_operands))
        scale = coefficient * constant * multiplicity
        if code is None:
            shape = tuple(extents[n] for n in out_names)
            code = f"xp.full({shape}, {self.printer.doprint(scale)}, dtype=DTYPE)" if shape else self.printer.doprint(scale)
        elif scale == -1:
            code = f"-{_wrap(code)}"
        elif scale != 1:
            code = f"{self.printer.doprint(scale)}*{_wrap(code)}"
        if any(spec is not None for spec in specs):
            missing = [n for n in out_names if not any(n in o.indices for o in kept_operands)]
            if missing:
                raise DSLUnsupportedError(f"cannot fold an output that does not depend on {missing}")
            variable = self.function.temp("folded")
            lead = batched and reduction.batch == "keep"
            self.function.line(f"{variable} = fold({code}, {tuple(reduction.shape)}, {specs!r}, {lead})")
            return variable
        return code

    # ---- factors ----
    def _factor(self, factor, atoms: dict, extents) -> Operand | None:
        symbols = [s for s in factor.free_symbols if s in atoms]
        if not symbols:
            return None
        if factor.is_Symbol:
            return self._atom(atoms[factor], extents)
        if factor.is_Pow and factor.base.is_Symbol and factor.base in atoms:
            operand = self._atom(atoms[factor.base], extents)
            name = sympy.Symbol(self._name_of(operand))
            return Operand(self.printer.doprint(name ** factor.exp), operand.indices)
        return self._elementwise(factor, symbols, atoms, extents)

    def _name_of(self, operand: Operand) -> str:
        if operand.code.isidentifier():
            return operand.code
        variable = self.function.temp("t")
        self.function.line(f"{variable} = {operand.code}")
        return variable

    def _atom(self, atom: Atom, extents) -> Operand:
        code = self.function.array(atom)
        specs, names = layout(atom.indices, extents)
        lead = (BATCH,) if atom.batched else ()
        if len(set(names)) != len(names):
            raise DSLUnsupportedError(f"{atom} repeats an index: diagonals are not supported")
        if all(spec is None for spec in specs):
            return Operand(code, lead + names)
        variable = self.function.temp(f"{atom.name}_windows")
        self.function.line(f"{variable} = unfold({code}, {specs!r}, {atom.batched})")
        return Operand(variable, lead + names)

    def _elementwise(self, factor, symbols, atoms, extents) -> Operand:
        operands = {s: self._atom(atoms[s], extents) for s in sorted(symbols, key=str)}
        union: list[str] = []
        if any(BATCH in op.indices for op in operands.values()):
            union.append(BATCH)
        for op in operands.values():
            union.extend(i for i in op.indices if i not in union)
        replacements = {}
        for symbol, op in operands.items():
            code = _broadcast(self._name_of(op), op.indices, tuple(union))
            if not code.isidentifier():
                variable = self.function.temp("t")
                self.function.line(f"{variable} = {code}")
                code = variable
            replacements[symbol] = sympy.Symbol(code, real=True)  # as the atoms are: sympy's simplifications stay cheap
        variable = self.function.temp("f")
        self.function.line(f"{variable} = {self.printer.doprint(factor.xreplace(replacements))}")
        return Operand(variable, tuple(union))

    # ---- contraction ----
    def _contract(self, operands: list[Operand], output: tuple[str, ...], extents) -> str | None:
        if not operands:
            return None
        operands = self._merge_equal(operands)
        operands = [self._presum(op, operands, output) for op in operands]
        while len(operands) > 1:
            first, second = self._cheapest_pair(operands, output, extents)
            a, b = operands[first], operands[second]
            rest = [op for k, op in enumerate(operands) if k not in (first, second)]
            keep = set(output).union(*[op.indices for op in rest]) if rest else set(output)
            pair = self._pair(a, b, keep, output)
            if rest:
                pair = self._assign(pair)
            operands = rest + [pair]
        return self._reorder(operands[0], output)

    def _merge_equal(self, operands: list[Operand]) -> list[Operand]:
        merged: dict[tuple, Operand] = {}
        for op in operands:
            key = op.indices
            if key in merged:
                merged[key] = Operand(f"{_wrap(merged[key].code)}*{_wrap(op.code)}", key)
            else:
                merged[key] = op
        return list(merged.values())

    def _presum(self, op: Operand, operands: list[Operand], output) -> Operand:
        others = set(output).union(*[o.indices for o in operands if o is not op])
        lonely = [k for k, i in enumerate(op.indices) if i not in others]
        if not lonely:
            return op
        axes = lonely[0] if len(lonely) == 1 else tuple(lonely)
        kept = tuple(i for i in op.indices if i in others)
        return Operand(f"{_wrap(op.code)}.sum(axis={axes})", kept)

    def _cheapest_pair(self, operands, output, extents):
        best, best_cost = None, None
        for i in range(len(operands)):
            for j in range(i + 1, len(operands)):
                rest = [op for k, op in enumerate(operands) if k not in (i, j)]
                needed = set(output).union(*[op.indices for op in rest]) if rest else set(output)
                union = set(operands[i].indices) | set(operands[j].indices)
                cost = (prod(extents[n] for n in union & needed), prod(extents[n] for n in union))
                if best_cost is None or cost < best_cost:
                    best, best_cost = (i, j), cost
        return best

    def _pair(self, a: Operand, b: Operand, keep: set[str], output: tuple[str, ...]) -> Operand:
        """The contraction of two operands, as an expression (matmul, broadcast product, tensordot or einsum)."""
        shared = [i for i in a.indices if i in b.indices]
        summed = [i for i in shared if i not in keep]
        order = {name: k for k, name in enumerate((BATCH,) + output)}
        if not summed and (set(a.indices) <= set(b.indices) or set(b.indices) <= set(a.indices)):
            big, small = (a, b) if len(a.indices) >= len(b.indices) else (b, a)
            return Operand(f"{_wrap(big.code)}*{_wrap(_broadcast(small.code, small.indices, big.indices))}", big.indices)
        if len(summed) == 1 and shared == summed and len(a.indices) <= 2 and len(b.indices) <= 2:
            (s,) = summed
            rest_a = tuple(i for i in a.indices if i != s)
            rest_b = tuple(i for i in b.indices if i != s)
            swapped = [order.get(i, 99) for i in rest_b + rest_a]
            straight = [order.get(i, 99) for i in rest_a + rest_b]
            if swapped < straight or (swapped == straight and BATCH in b.indices and BATCH not in a.indices):
                a, b, rest_a, rest_b = b, a, rest_b, rest_a
            left = a.code if a.indices[-1] == s else f"{_wrap(a.code)}.T"
            right = b.code if b.indices[0] == s else f"{_wrap(b.code)}.T"
            return Operand(f"{_wrap(left)} @ {_wrap(right)}", rest_a + rest_b)
        if not (set(shared) - set(summed)):
            axes = (tuple(a.indices.index(s) for s in summed), tuple(b.indices.index(s) for s in summed))
            indices = tuple(i for i in a.indices if i not in summed) + tuple(i for i in b.indices if i not in summed)
            return Operand(f"xp.tensordot({a.code}, {b.code}, axes={axes})", indices)
        result = tuple(sorted(dict.fromkeys(i for i in a.indices + b.indices if i in keep), key=lambda i: order.get(i, 99)))
        letters = _letters(a.indices + b.indices)
        spec = f"{''.join(letters[i] for i in a.indices)},{''.join(letters[i] for i in b.indices)}->{''.join(letters[i] for i in result)}"
        return Operand(f"xp.einsum('{spec}', {a.code}, {b.code})", result)

    def _assign(self, operand: Operand) -> Operand:
        variable = self.function.temp("t")
        self.function.line(f"{variable} = {operand.code}")
        return Operand(variable, operand.indices)

    def _reorder(self, op: Operand, output: tuple[str, ...]) -> str:
        extra = [i for i in op.indices if i not in output]
        if not extra and op.indices == output:
            return op.code
        if not extra and set(op.indices) == set(output):
            return f"{_wrap(op.code)}.transpose({tuple(op.indices.index(i) for i in output)})"
        letters = _letters(op.indices + output)
        spec = f"{''.join(letters[i] for i in op.indices)}->{''.join(letters[i] for i in output if i in op.indices)}"
        return f"xp.einsum('{spec}', {op.code})"


def _broadcast(code: str, source: tuple[str, ...], target: tuple[str, ...]) -> str:
    """`code` indexed by `source`, viewed along `target` (new axes of length one)."""
    present = [i for i in target if i in source]
    if list(source) != present:
        code = f"{_wrap(code)}.transpose({tuple(source.index(i) for i in present)})"
    if len(present) == len(target):
        return code
    index = ", ".join(":" if i in source else "None" for i in target)
    return f"{_wrap(code)}[{index}]"


def _letters(indices) -> dict[str, str]:
    """einsum letters: an index keeps its own name when it is one free letter; the batch is b."""
    letters: dict[str, str] = {}
    pool = [c for c in "ijklmnopqrstuvwxyzacdefghABCDEFGHIJKLMNOPQRSTUVWXYZb"]
    wanted = dict.fromkeys(indices)
    for name in wanted:
        preferred = "b" if name == BATCH else name
        if len(preferred) == 1 and preferred.isalpha() and preferred not in letters.values():
            letters[name] = preferred
    for name in wanted:
        if name not in letters:
            letters[name] = next(c for c in pool if c not in letters.values())
    return letters


def _wrap(code: str) -> str:
    if code.isidentifier() or code.replace(".", "").replace("_", "").isalnum():
        return code
    if code.startswith("(") and code.endswith(")") and code.count("(") == 1:
        return code
    return f"({code})"
