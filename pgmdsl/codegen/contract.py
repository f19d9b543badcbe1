"""Reductions to array code: unfold affine reads, multiply, contract, fold.

A reduction `out[o] = sum_rest expr(atoms)` is split into its numeric
coefficient and factors. Each factor is an array over some indices: an atom
(read at affine indices: its patch matrix, the sliding windows copied once
into a contiguous array, im2col), a power of one, or an elementwise
expression over the union of its atoms' indices. The factors are contracted
pairwise in an order chosen here, at compile time, by an estimate of each
pair's time (`pair_cost`: matrix products at BLAS rates, batched einsums at
loop rates, elementwise products at memory rates), each pair printed as a
matrix product, tensordot (placed so that the patch matrix reshapes without
a copy: one GEMM) or einsum. An output at affine indices (the field of a
convolved layer) is folded back, col2im: the adjoint of the unfold, with
the window offsets as the leading axes so each offset adds one block.
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

# Nanoseconds per unit of work on the CPUs the project runs on (docs/performance.md, bench/conv.py):
GEMM_FLOP = 0.01  # a multiply-add in a BLAS matrix product is two flops at about 100-200 GFLOP/s
LOOP_TERM = 2.0  # a term of a batched einsum, which NumPy loops over without BLAS
ELEMENT = 1.0  # an element written by an elementwise product or read by a copy


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
        self.patches: dict[tuple, Operand] = {}  # (array, specs) -> its patch matrix, built once per function

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
        folded = any(spec is not None for spec in specs)
        spread = kept_operands and present != output
        if spread and folded:
            # spread along the axes the summand does not mention: a folded output needs every axis
            for name in out_names:
                if name not in present:
                    kept_operands.append(Operand(f"xp.ones({extents[name]}, dtype=DTYPE)", (name,)))
            present, spread = output, False
        windows = {n for affine in reduction.output for n in axis_spec(affine, extents)[2]}
        target = tuple(n for n in present if n in windows) + tuple(n for n in present if n not in windows) \
            if folded else present
        code = self._contract(kept_operands, target, extents)
        multiplicity = prod(extents[n] for n in form.extents if n not in output and not any(n in o.indices for o in kept_operands))
        scale = coefficient * constant * multiplicity
        if code is None:
            shape = tuple(extents[n] for n in out_names)
            code = f"xp.full({shape}, {self.printer.doprint(scale)}, dtype=DTYPE)" if shape else self.printer.doprint(scale)
        elif scale == -1:
            code = f"-{_wrap(code)}"
        elif scale != 1:
            code = f"{self.printer.doprint(scale)}*{_wrap(code)}"
        if spread:
            # a field or statistic has its layer's full shape (a length-1 axis would broadcast in arithmetic but
            # give means of the wrong shape): the axes the summand does not mention are a read-only broadcast
            # view, no array of ones multiplied out (a bias term's field costs nothing until it is added)
            view = self.function.temp("t")
            self.function.line(f"{view} = {_broadcast(code, present, output)}")
            lead = f"{view}.shape[:1] + " if output[:1] == (BATCH,) else ""
            code = f"xp.broadcast_to({view}, {lead}{tuple(extents[n] for n in out_names)!r})"
        if folded:
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
        key = (code, specs, atom.batched)
        if key in self.patches and atom.kind in ("param", "layer", "let"):  # names assigned once in a function
            return self.patches[key]
        indices = lead + names
        order = patch_order(specs, indices, len(lead))
        variable = self.function.temp(f"{atom.name}_patches")
        self.function.line(f"{variable} = patches({code}, {specs!r}, {atom.batched}, "
                           f"{tuple(indices.index(i) for i in order)})")
        if atom.batched:
            self.function.batched_patches = True
        self.patches[key] = Operand(variable, order)
        return self.patches[key]

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
            pair = self._pair(a, b, keep, output, extents, kept=bool(rest))
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
        """The pair to contract first: the least estimated time, then the smallest intermediate."""
        best, best_cost = None, None
        for i in range(len(operands)):
            for j in range(i + 1, len(operands)):
                rest = [op for k, op in enumerate(operands) if k not in (i, j)]
                needed = set(output).union(*[op.indices for op in rest]) if rest else set(output)
                union = set(operands[i].indices) | set(operands[j].indices)
                cost = (pair_cost(operands[i].indices, operands[j].indices, needed, extents),
                        prod(extents[n] for n in union & needed), prod(extents[n] for n in union))
                if best_cost is None or cost < best_cost:
                    best, best_cost = (i, j), cost
        return best

    def _pair(self, a: Operand, b: Operand, keep: set[str], output: tuple[str, ...], extents,
              kept: bool = False) -> Operand:
        """The contraction of two operands, as an expression (matmul, broadcast product, tensordot or einsum).

        kept: the pair is an intermediate (a later product reads it, nothing writes into it); a product of
        parameters alone that is larger than its operands is then the prelude's kept_einsum, rebuilt only when
        they change (the mcRBM's precision: R R^T per factor, the same for every sweep while sampling).
        """
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
            first, second, summed = gemm_placement(a.indices, b.indices, summed, extents)
            first, second = (a, b) if first == a.indices and second == b.indices else (b, a)
            axes = (tuple(first.indices.index(s) for s in summed), tuple(second.indices.index(s) for s in summed))
            indices = tuple(i for i in first.indices if i not in summed) + \
                tuple(i for i in second.indices if i not in summed)
            return Operand(f"xp.tensordot({first.code}, {second.code}, axes={axes})", indices)
        # indices a later contraction sums over lead (order.get is 99 only for those): that product then reads this
        # intermediate as one (summed, free) block, a GEMM without a copy (mcRBM's precision: R R^T per k, then hc)
        result = tuple(sorted(dict.fromkeys(i for i in a.indices + b.indices if i in keep),
                              key=lambda i: (i in order, order.get(i, 99))))
        letters = _letters(a.indices + b.indices)
        spec = f"{''.join(letters[i] for i in a.indices)},{''.join(letters[i] for i in b.indices)}->{''.join(letters[i] for i in result)}"
        grows = prod(extents[i] for i in result) > 2 * (prod(extents[i] for i in a.indices) +
                                                        prod(extents[i] for i in b.indices))
        if kept and grows and BATCH not in a.indices + b.indices:
            return Operand(f"kept_einsum('{spec}', {a.code}, {b.code})", result)
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


def pair_cost(a: tuple[str, ...], b: tuple[str, ...], needed: set[str], extents) -> float:
    """Estimated nanoseconds to contract operands indexed by a and b, keeping the indices in `needed`.

    No summed index: an elementwise (broadcast) product, one write per result
    element. Summed indices and no other shared one: one matrix product
    (tensordot), 2 flops per term at BLAS rates, plus writing its result.
    Summed and kept shared indices (the batch of a weighted statistic): a
    batched einsum, every term looped over without BLAS: 100-200x a GEMM's.
    """
    union = set(a) | set(b)
    shared = set(a) & set(b)
    summed = shared - needed
    terms = prod(extents[n] for n in union)
    result = prod(extents[n] for n in union & needed)
    if not summed:
        return result * ELEMENT
    if shared - summed:
        return terms * LOOP_TERM
    return 2 * terms * GEMM_FLOP + result * ELEMENT


def gemm_placement(a: tuple[str, ...], b: tuple[str, ...], summed, extents):
    """(first, second, summed in order) for tensordot(first, second) with as few copies as can be had.

    tensordot views the first operand as (free, summed) and the second as
    (summed, free); a C-ordered operand whose summed indices are already one
    leading or trailing block reshapes to that matrix without a copy (BLAS
    takes it transposed), in either place. So the summed order is taken from
    the larger operand that has such a block (a patch matrix, usually), and
    an operand that must be copied goes where its last (contiguous) index
    stays last, so the copy runs along rows.
    """
    summed = list(summed)
    size = {op: prod(extents[n] for n in op) for op in (a, b)}

    def block(op, order):
        inner = [i for i in op if i in summed]
        if order is not None and inner != order:
            return False
        free = [i for i in op if i not in summed]
        return list(op) in (inner + free, free + inner)

    by_size = sorted((a, b), key=lambda op: -size[op])
    source = next((op for op in by_size if block(op, None)), by_size[0])
    order = [i for i in source if i in summed]
    summed = tuple(order)
    for op in by_size:
        if not block(op, order):  # copied: first (free, summed) keeps a summed last index last
            other = b if op == a else a
            return (op, other, summed) if op[-1] in summed else (other, op, summed)
    return a, b, summed


def patch_order(specs, indices: tuple[str, ...], lead: int) -> tuple[str, ...]:
    """The axes of an unfolded read as its patch matrix lays them out: plain axes, window offsets, batch, positions.

    A filter's contracted indices (channel, offsets) lead and the positions
    trail, the last one the source's contiguous axis: the copy runs along
    rows, and both the filter product (field) and the position product (a
    weight statistic) see the matrix as one block each way.
    """
    kinds = {}
    k = lead
    for spec in specs:
        if spec is None:
            kinds[indices[k]] = 0
            k += 1
        elif spec[0] != "at":
            kinds[indices[k]] = 3
            k += 1
    for name in indices[:lead]:
        kinds[name] = 2
    return tuple(sorted(indices, key=lambda i: kinds.get(i, 1)))


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
