"""What the derivation hands to the code generator: reductions over index spaces.

A Reduction is `out[output] = sum over the other indices of expr`, where expr
is a sympy scalar in atoms (arrays read at indices). Compute names an array
made of a sum of reductions. Everything the compiler derives — energy,
fields, quadratic coefficients, free energy pieces, gradient statistics — is
a list of these; the backends turn each into array code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from ..ir.expr import Affine
from .scalar import ScalarForm


@dataclass
class Reduction:
    form: ScalarForm
    output: tuple[Affine, ...]  # output axes, each an index or an affine form (folded)
    shape: tuple[int, ...]  # output shape, batch axis excluded
    batch: str = "keep"  # keep: one value per batch row; sum: weighted sum over rows

    @property
    def expr(self) -> sympy.Expr:
        return self.form.expr

    @property
    def batched(self) -> bool:
        return any(self.form.atoms[s].batched for s in self.form.expr.free_symbols if s in self.form.atoms)


@dataclass
class Compute:
    """A named intermediate array: the sum of `parts`."""

    name: str
    parts: list[Reduction]
    shape: tuple[int, ...]
    batched: bool
    comment: str = ""


@dataclass
class Covariance:
    """Cov[layer | rest] of a summed-out quadratic layer, which no reduction computes: the code generator writes it.

    diagonal: each unit's variance, shaped like the layer (the unit type's
    `variance` of its field and precision; for units coupled through the
    precision, the diagonal of the inverse precision matrix); otherwise the
    inverse precision matrix, shaped layer shape + layer shape (joint layers
    only). Always batched: one per row, so that its statistics are weighted
    by the rows' weights even where the precision depends on no layer.
    """

    name: str
    layer: str
    shape: tuple[int, ...]
    diagonal: bool
    joint: bool  # the layer's units are coupled through its precision (a full matrix per row)
    comment: str = ""
    batched: bool = True


@dataclass
class Program:
    """Computes in order, then the sum of `parts` as the result."""

    temps: list[Compute | Covariance] = field(default_factory=list)
    parts: list[Reduction] = field(default_factory=list)

    def extend(self, other: "Program") -> None:
        self.temps.extend(other.temps)
        self.parts.extend(other.parts)

    def scaled(self, factor) -> "Program":
        parts = [
            Reduction(ScalarForm(factor * r.form.expr, r.form.atoms, r.form.extents, r.form.free, r.form.label,
                                 r.form.span),
                      r.output, r.shape, r.batch)
            for r in self.parts
        ]
        return Program(list(self.temps), parts)

    @property
    def empty(self) -> bool:
        return not self.parts


@dataclass
class LayerKernel:
    """How one sampled layer is drawn given the others."""

    layer: str
    unit: str
    update: str  # block | unitwise | joint | pooled
    field: Program  # natural parameter: -dE/dL at L = 0
    quadratic: Program | None = None  # Gaussian: d2E/dL2 per unit (diagonal)
    hessian: Program | None = None  # Gaussian joint: the off-diagonal precision
    pool: tuple[int, ...] = ()
    # unit-wise layers: -d2E/dL dL (the change of each unit's field per unit change of another) is this plus its
    # transpose, shaped layer shape + layer shape (each pair of units once), when it does not depend on the layer
    # itself; otherwise None and `why` says why
    coupling: Program | None = None
    why: str = ""
    # jointly drawn quadratic layers: dE/dL at the state (the layer included), for gradient-based samplers (HMC)
    gradient: Program | None = None


@dataclass
class Marginalisation:
    """A free energy: the layers of one colour class summed out, the others kept."""

    summed: tuple[str, ...]
    kept: tuple[str, ...]
    kept_energy: list[Reduction]  # the energy with the summed layers at zero


@dataclass
class Derivation:
    model: object
    lets: dict[str, Compute]
    energy: list[Reduction]
    layers: dict[str, LayerKernel]
    marginalisations: list[Marginalisation]  # the first is the default free energy
    statistics: dict[str, Program]  # E[-dE/dtheta | kept layers], weighted sums over the batch, given a state whose
    # marginalised layers are at their conditional means (the second moments of quadratic ones are added here)

    @property
    def kept(self) -> tuple[str, ...]:
        return self.marginalisations[0].kept

    @property
    def marginalised(self) -> tuple[str, ...]:
        return self.marginalisations[0].summed

