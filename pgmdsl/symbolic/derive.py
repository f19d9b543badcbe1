"""Derive everything a sampler and a trainer need from the energy alone.

For every sampled layer: its field (natural parameter) and, for Gaussian
layers, its quadratic coefficients; the free energy with one colour class of
the schedule marginalised; and for every parameter the statistics
E[-dE/dtheta | kept layers] whose data-minus-model difference is the
log-likelihood gradient. Each is a Program of Reductions (see kernels.py); no
array code is written here.

The statistics are evaluated on a state whose summed-out layers hold their
conditional means. That is exact where -dE/dtheta is linear in them (discrete
units: the energy is linear in each), but a quadratic (Gaussian-like) layer x
can enter -dE/dtheta squared, when its precision depends on theta: there
E[x x^T | rest] = mean mean^T + Cov[x | rest], and the statistics get the
missing covariance term (`_second_moments`).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import sympy

from .. import units
from ..errors import DSLUnsupportedError
from ..ir.expr import Affine
from ..ir import pooling
from ..ir.graph import GibbsStep
from ..ir.model import ModelIR
from .kernels import Compute, Covariance, Derivation, LayerKernel, Marginalisation, Program, Reduction
from .scalar import Atom, ScalarForm, SymbolTable, batched, scalar_form



def plain(names) -> tuple[Affine, ...]:
    return tuple(Affine(((n, 1),)) for n in names)


class Context:
    """Shared state of one derivation: the model, its symbols and fresh names."""

    def __init__(self, model: ModelIR):
        self.model = model
        self.table = SymbolTable(model, frozenset())
        self._counter = 0
        self.jacobians: dict = {}
        self._depends: dict[tuple[str, str], bool] = {}
        self.let_forms: dict[str, list[ScalarForm]] = {}
        positive = set()
        for let in _let_order(model):
            forms = [scalar_form(model, s, self.table, free=let.indices, label=f"let {let.name}") for s in let.summands]
            self.let_forms[let.name] = forms
            if len(forms) == 1 and forms[0].expr.is_positive:
                positive.add(let.name)
                self.table.positive_lets = frozenset(positive)
        self.positive_lets = frozenset(positive)

    def fresh(self, stem: str) -> str:
        self._counter += 1
        return f"{stem}_{self._counter}"

    def shape(self, name: str) -> tuple[int, ...]:
        for group in (self.model.layers, self.model.params, self.model.lets):
            for item in group:
                if item.name == name:
                    return item.shape
        raise KeyError(name)

    def depends(self, let: str, target: str) -> bool:
        """Whether a let reads `target`, directly or through other lets (memoised: chains may share lets)."""
        key = (let, target)
        if key not in self._depends:
            self._depends[key] = any(
                ref.name == target or (ref.kind == "let" and self.depends(ref.name, target))
                for summand in self.model.let(let).summands for ref in summand.refs()
            )
        return self._depends[key]


def _let_order(model: ModelIR):
    done: dict[str, object] = {}

    def visit(let):
        if let.name in done:
            return
        for summand in let.summands:
            for ref in summand.refs():
                if ref.kind == "let":
                    visit(model.let(ref.name))
        done[let.name] = let

    for let in model.lets:
        visit(let)
    return list(done.values())


def _label(model: ModelIR, term, summand) -> str:
    return f"{term.name}: {summand}  ({Path(model.filename).name}:{summand.span.line})"


def _touches(ctx: Context, form: ScalarForm, layer: str) -> bool:
    return any(
        a.name == layer or (a.kind == "let" and ctx.depends(a.name, layer)) for a in form.atoms.values()
    )


def derivative(ctx: Context, form: ScalarForm, target: str, batch: str) -> Program:
    """d(sum of form)/d target[...], indexed like target; lets are followed by the chain rule."""
    program = Program()
    for symbol, atom in list(form.atoms.items()):
        if atom.name == target and atom.kind in ("layer", "param"):
            d = sympy.diff(form.expr, symbol)
            if d != 0:
                program.parts.append(Reduction(_with(form, d), atom.indices, ctx.shape(target), batch))
        elif atom.kind == "let" and ctx.depends(atom.name, target):
            outer = sympy.diff(form.expr, symbol)
            if outer == 0:
                continue
            let = ctx.model.let(atom.name)
            if any(a.plain is None for a in atom.indices):
                raise DSLUnsupportedError(
                    f"let '{let.name}' is read at {atom}; the chain rule needs it read at plain indices ({form.label})", form.span)
            temp = Reduction(_with(form, outer), atom.indices, let.shape, "keep")
            name = ctx.fresh(f"d_{let.name}")
            program.temps.append(Compute(name, [temp], let.shape, temp.batched, f"dE/d{let.name} in {form.label}"))
            weight = Atom(name, "temp", plain(let.indices), temp.batched)
            for body in ctx.let_forms[let.name]:
                weight_symbol = ctx.table.symbol(weight)
                inner = ScalarForm(
                    weight_symbol * body.expr, {**body.atoms, weight_symbol: weight}, dict(body.extents), (), form.label,
                    form.span
                )
                program.extend(derivative(ctx, inner, target, batch))
    return program


def _with(form: ScalarForm, expr: sympy.Expr) -> ScalarForm:
    atoms = {s: a for s, a in form.atoms.items() if s in expr.free_symbols}
    return ScalarForm(expr, atoms, dict(form.extents), form.free, form.label, form.span)


def _layer_atoms(form: ScalarForm, layer: str) -> list[sympy.Symbol]:
    return [s for s, a in form.atoms.items() if a.name == layer and a.kind == "layer"]


def _display(form: ScalarForm, expr: sympy.Expr) -> str:
    names = {s: sympy.Symbol(str(a)) for s, a in form.atoms.items()}
    return str(expr.xreplace(names)).replace("**", "^")


def derive(model: ModelIR, schedule: tuple[GibbsStep, ...]) -> Derivation:
    model = pooling.expand(model)  # pooling units as the sums of their blocks: terms on them become terms on h
    ctx = Context(model)
    energy: list[Reduction] = []
    forms: list[ScalarForm] = []
    for term in model.terms:
        for summand in term.summands:
            form = scalar_form(model, summand, ctx.table, label=_label(model, term, summand))
            forms.append(form)
            energy.append(Reduction(form, (), (), "keep"))
    lets = {
        let.name: Compute(
            let.name,
            [Reduction(f, plain(let.indices), let.shape, "keep") for f in ctx.let_forms[let.name]],
            let.shape,
            batched(model, let.name, "let"),
            f"let {let.name}",
        )
        for let in _let_order(model)
    }
    layers = {}
    for step in schedule:
        for name in step.layers:
            layers[name] = _layer_kernel(ctx, forms, name, step.update(name))
    _check_joint_precision(ctx, forms)
    marginalisations = [
        Marginalisation(summed, _kept(model, summed), _kept_energy(ctx, forms, summed))
        for summed in _summable_classes(schedule)
    ] or [Marginalisation((), _kept(model, ()), [Reduction(f, (), (), "keep") for f in forms])]
    moments = _second_moments(ctx, forms, layers, marginalisations[0].summed)
    statistics = {}
    for param in model.params:
        program = Program()
        for form in forms:
            program.extend(derivative(ctx, form, param.name, "sum").scaled(-1))
        used: list[Covariance] = []
        correction = Program()
        for form, covariance in moments:
            part = derivative(ctx, form, param.name, "sum").scaled(-1)
            if not part.empty:
                _check_moment(model, form, covariance, param.name)
                correction.extend(part)
                if covariance not in used:
                    used.append(covariance)
        statistics[param.name] = Program(used + program.temps + correction.temps, program.parts + correction.parts)
    return Derivation(model, lets, energy, layers, marginalisations, statistics)


def _check_moment(model: ModelIR, form: ScalarForm, covariance: Covariance, param: str) -> None:
    """Refuse, at the summand, a second moment a statistic needs and the code generator cannot give."""
    unit = model.layer(covariance.layer).unit
    if not covariance.joint and not getattr(units.get(unit), "variance", ""):
        raise DSLUnsupportedError(
            f"{unit} units give no variance, which the statistic of {param} needs: the precision of summed-out "
            f"layer {covariance.layer} depends on it ({form.label})", form.span)


# ---- quadratic layers together ----

# Most units of quadratic layers one coupling term may read for its Hessian to be checked (2^n principal minors).
MAX_COUPLED_UNITS = 4


def _check_joint_precision(ctx: Context, forms: list[ScalarForm]) -> None:
    """The energy must be bounded below in all quadratic (Gaussian-like) layers together, not only in each.

    Each layer's conditional can be proper while the joint is not: with
    v^2/2 + h^2/2 - v W h, v | h ~ N(W h, I) and h | v ~ N(W^T v, I) for every
    W, but the energy is unbounded below (the Gibbs sampler runs off to 1e286)
    unless the joint precision [[I, -W], [-W^T, I]] is positive definite, i.e.
    |W| < 1. Why this is refused at compile time rather than checked at run
    time: whether it holds depends on the parameters' values, which move; a
    check before training does not stop CD from growing W past the bound, so
    it would have to run before every sweep, as a Cholesky of the joint
    precision of all quadratic layers (their sizes added up, squared), and
    once the coupling involves a discrete layer (-v W h z) once per
    configuration of it; and the language's rule is that a model the compiler
    cannot show to be well defined is refused with its line, term and reason,
    as a coefficient of x^2 that is not provably positive is (_check_positive).
    What is provably bounded is accepted: a term coupling quadratic layers
    whose Hessian in their units is positive semidefinite (every principal
    minor >= 0: (v[i] - h[i])^2 / 2, or (v[i] - exp(c[i]) * h[i])^2 / 2 with a
    learned scale), when every layer it couples also has a positive square in
    a term of its own; the sum is then positive definite.
    """
    model = ctx.model
    quadratic = [layer.name for layer in model.layers
                 if layer.sampled and units.get(layer.unit) is not None and units.get(layer.unit).quadratic]
    if len(quadratic) < 2:
        return
    own: set[str] = set()
    coupling: list[tuple[ScalarForm, list[str]]] = []
    for form in forms:
        reads = {s: {a.name} for s, a in form.atoms.items() if a.kind == "layer" and a.name in quadratic}
        reads.update({s: {n for n in quadratic if ctx.depends(a.name, n)} for s, a in form.atoms.items()
                      if a.kind == "let"})
        reads = {s: layers for s, layers in reads.items() if layers}
        symbols = list(reads)
        coupled = [(a, b) for k, a in enumerate(symbols) for b in symbols[k:]
                   if any(x != y for x in reads[a] for y in reads[b]) and sympy.diff(form.expr, a, b) != 0]
        if not coupled:
            own.update(next(iter(reads[s])) for s in symbols
                       if form.atoms[s].kind == "layer" and sympy.diff(form.expr, s, 2) != 0)
            continue
        layers = [n for n in quadratic if any(n in reads[s] for pair in coupled for s in pair)]
        direct = [s for s in symbols if form.atoms[s].kind == "layer"]
        carried = any(form.atoms[s].kind == "let" for pair in coupled for s in pair)
        if carried or len(direct) > MAX_COUPLED_UNITS or not _semidefinite(form, direct):
            _unbounded_coupling(ctx, form, coupled[0], layers)
        coupling.append((form, layers))
    for form, layers in coupling:
        missing = [n for n in layers if n not in own]
        if missing:
            names = " and ".join(f"{model.layer(n).unit} layer {n}" for n in missing)
            raise DSLUnsupportedError(
                f"energy is not provably bounded below in {_together(model, layers)}: term "
                f"'{form.label.split(':')[0]}' couples them, and {names} {'has' if len(missing) == 1 else 'have'} no "
                f"positive square in a term of its own, so the coupling may leave a direction along which the energy "
                f"stays flat", form.span,
                notes=(f"add a square term for each coupled layer, such as {missing[0]}[i]^2 / 2",))


def _semidefinite(form: ScalarForm, symbols: list[sympy.Symbol]) -> bool:
    """Whether the form's Hessian in `symbols` is provably positive semidefinite: every principal minor >= 0."""
    hessian = sympy.Matrix([[sympy.diff(form.expr, a, b) for b in symbols] for a in symbols])
    for size in range(1, len(symbols) + 1):
        for rows in combinations(range(len(symbols)), size):
            minor = hessian.extract(list(rows), list(rows)).det()
            if minor.is_nonnegative:
                continue
            if sympy.count_ops(minor) > 200 or not sympy.simplify(minor).is_nonnegative:  # simplify stays cheap
                return False
    return True


def _together(model: ModelIR, layers: list[str]) -> str:
    return " and ".join(f"{model.layer(n).unit} layer {n}" for n in layers) + " together"


def _unbounded_coupling(ctx: Context, form: ScalarForm, pair, layers: list[str]) -> None:
    a, b = pair
    coefficient = sympy.diff(form.expr, a, b) / (2 if a == b else 1)
    product = f"{form.atoms[a]}^2" if a == b else f"{form.atoms[a]}*{form.atoms[b]}"
    raise DSLUnsupportedError(
        f"energy is not provably bounded below in {_together(ctx.model, layers)}: term "
        f"'{form.label.split(':')[0]}' couples them (coefficient of {product} is {_display(form, coefficient)}); "
        f"each layer given the others is proper, but the joint energy is bounded below only while the joint "
        f"precision of {' and '.join(layers)} is positive definite, which depends on the parameters' values",
        form.span,
        notes=("couple a quadratic layer to discrete layers only (as gbrbm and mcrbm do), or write the coupling as "
               "a square with a positive weight, such as (v[i] - h[i])^2 / 2, beside each layer's own square",))


# ---- second moments of summed-out quadratic layers ----

def _second_moments(ctx: Context, forms: list[ScalarForm], layers: dict[str, LayerKernel],
                    summed) -> list[tuple[ScalarForm, Covariance]]:
    """Forms G whose -dG/dtheta, added to -dE/dtheta at x = E[x | rest], gives E[-dE/dtheta | rest].

    For an energy quadratic in a summed-out layer x with mean m and covariance
    C given the rest, E[g(x)] = g(m) + tr(C H_g) / 2 for every g quadratic in x
    (H_g its Hessian), whatever the distribution. With g = -dE/dtheta,
    H_g = -dP/dtheta where P = d2E/dx2 is x's precision, so the statistic
    misses -tr(C dP/dtheta) / 2 = -d/dtheta [tr(C P) / 2] with C held fixed:
    G = tr(C P) / 2, one form per squared unit (x[i]^2: C[i, i] times its
    coefficient) and, for units coupled through a let u linear in x
    (w u[k]^2 / 2, the joint layers), w J^T C J / 2 with the let's body
    written out (J = du/dx), so that theta inside the let (mcRBM's R) is
    differentiated too. C is a Covariance the code generator computes: the
    unit type's variance of the field and precision for independent units,
    the inverse precision matrix for joint ones.
    """
    moments: list[tuple[ScalarForm, Covariance]] = []
    for name in summed:
        layer = ctx.model.layer(name)
        unit = units.get(layer.unit)
        if unit is None or not unit.quadratic:
            continue
        joint = layers[name].hessian is not None
        diagonal = Covariance(ctx.fresh(f"var_{name}"), name, layer.shape, True, joint,
                              f"Var[{name} | rest], for E[{name}^2 | rest] = mean^2 + variance")
        full = Covariance(ctx.fresh(f"cov_{name}"), name, layer.shape * 2, False, True,
                          f"Cov[{name} | rest] = inverse precision, for E[{name} {name}^T | rest]") if joint else None
        for form in forms:
            if not _touches(ctx, form, name):
                continue
            for symbol in _layer_atoms(form, name):
                second = sympy.diff(form.expr, symbol, 2)
                if second == 0:
                    continue
                variance = Atom(diagonal.name, "temp", form.atoms[symbol].indices, True)
                weight = ctx.table.symbol(variance)
                base = _with(form, second)
                moments.append((ScalarForm(second * weight / 2, {**base.atoms, weight: variance}, dict(form.extents),
                                           (), form.label, form.span), diagonal))
            for carrier, atom in form.atoms.items():
                if atom.kind != "let" or not ctx.depends(atom.name, name):
                    continue
                weight = sympy.diff(form.expr, carrier, 2)
                if weight != 0:
                    moments.extend(_carried_moments(ctx, form, atom, _with(form, weight), layer, full))
    return moments


def _carried_moments(ctx: Context, form: ScalarForm, atom: Atom, weight: ScalarForm, layer,
                     covariance: Covariance) -> list[tuple[ScalarForm, Covariance]]:
    """weight * J^T C J / 2 for a let u (read at `atom`) linear in `layer`, summed over the form's indices.

    J[p, site] = du[site]/dx[p] is the let's body differentiated, written out
    twice with fresh summed indices (the Jacobian array the sampler uses would
    hide the parameters inside it from the chain rule). The let reads the
    layer at indices it sums over (_let_jacobian refuses its own), so the two
    copies read C at distinct fresh indices.
    """
    let = ctx.model.let(atom.name)
    if any(a.plain is None for a in atom.indices):
        raise DSLUnsupportedError(
            f"let '{let.name}' is read at {atom}; the statistics of summed-out layer {layer.name} need it read at "
            f"plain indices ({form.label})", form.span)
    site = {index: a.plain for index, a in zip(let.indices, atom.indices)}
    pieces = [(body, symbol) for body in ctx.let_forms[let.name]
              for symbol, inner in body.atoms.items() if inner.kind == "layer" and inner.name == layer.name]
    moments = []
    for first, second in ((a, b) for a in pieces for b in pieces):
        atoms, extents, expr, reads = dict(weight.atoms), dict(weight.extents), weight.expr / 2, ()
        for body, symbol in (first, second):
            renamed, symbols = _renamed(ctx, body, site)
            atoms.update(renamed.atoms)
            extents.update(renamed.extents)
            expr = expr * sympy.diff(renamed.expr, symbols[symbol])
            reads += renamed.atoms[symbols[symbol]].indices
        entry = Atom(covariance.name, "temp", reads, True)  # the two reads share no index: the let sums over them
        symbol = ctx.table.symbol(entry)
        atoms[symbol] = entry
        expr = expr * symbol
        atoms = {s: a for s, a in atoms.items() if s in expr.free_symbols}
        moments.append((ScalarForm(expr, atoms, extents, (), form.label, form.span), covariance))
    return moments


def _renamed(ctx: Context, body: ScalarForm, names: dict[str, str]) -> tuple[ScalarForm, dict]:
    """A let's body with its indices renamed: `names` for the let's own, fresh names for those it sums over.

    Returns the renamed form and the map from the body's symbols to the new ones.
    """
    mapping = dict(names)
    for atom in body.atoms.values():
        for index in atom.index_names:
            if index not in mapping:
                mapping[index] = ctx.fresh("q")
    for index in body.extents:
        if index not in mapping:
            mapping[index] = ctx.fresh("q")
    symbols, atoms = {}, {}
    for symbol, atom in body.atoms.items():
        indices = tuple(Affine(tuple((mapping[n], c) for n, c in a.terms), a.offset) for a in atom.indices)
        renamed = Atom(atom.name, atom.kind, indices, atom.batched)
        symbols[symbol] = ctx.table.symbol(renamed)
        atoms[symbols[symbol]] = renamed
    extents = {mapping[n]: size for n, size in body.extents.items()}  # the let's own indices: the reading form's
    return ScalarForm(body.expr.xreplace(symbols), atoms, extents, (), body.label, body.span), symbols


def _summable_classes(schedule) -> list[tuple[str, ...]]:
    """Colour classes whose layers can all be summed (or integrated) out analytically.

    The default comes first: the last class (an RBM's h, a DBM's h1), so that
    the free energy is a function of the visible class. Classes that hold
    coupled discrete units (a BM's layers) cannot be summed in closed form.
    """
    summable = [
        step.layers for step in schedule
        if len(schedule) >= 2 and all(step.update(n) in ("block", "pooled", "joint") for n in step.layers)
    ]
    return sorted(summable, key=lambda layers: layers != schedule[-1].layers) if summable else []


def _kept(model: ModelIR, summed) -> tuple[str, ...]:
    return tuple(layer.name for layer in model.layers if layer.role != "pooled" and layer.name not in summed)


def _kept_energy(ctx: Context, forms: list[ScalarForm], summed) -> list[Reduction]:
    """The energy with the summed-out layers at zero (their fields carry the rest)."""
    kept = []
    for form in forms:
        zero = {}
        for layer in summed:
            zero.update({s: 0 for s in _layer_atoms(form, layer)})
            for symbol, atom in form.atoms.items():
                if atom.kind == "let" and ctx.depends(atom.name, layer):
                    _let_jacobian(ctx, atom, ctx.model.layer(layer), array=False)  # raises unless linear in it
                    zero[symbol] = 0
        expr = form.expr.subs(zero)
        if expr != 0:
            kept.append(Reduction(_with(form, expr), (), (), "keep"))
    return kept


def _layer_kernel(ctx: Context, forms: list[ScalarForm], name: str, update: str) -> LayerKernel:
    layer = ctx.model.layer(name)
    touching = [f for f in forms if _touches(ctx, f, name)]
    if units.get(layer.unit).quadratic:
        return _quadratic_kernel(ctx, touching, layer, update)
    return _linear_kernel(ctx, touching, layer, update)


def _linear_kernel(ctx: Context, forms, layer, update: str) -> LayerKernel:
    """The field of a layer whose units enter the energy linearly (discrete types): -dE/dunit."""
    field = Program()
    for form in forms:
        atoms = _layer_atoms(form, layer.name)
        for symbol in atoms:
            if sympy.diff(form.expr, symbol, 2) != 0:
                raise DSLUnsupportedError(
                    f"the energy is not linear in {layer.unit} layer {layer.name} ({form.label})", form.span)
        if update != "unitwise" and len(atoms) > 1:
            raise DSLUnsupportedError(f"term couples units of layer {layer.name} ({form.label})", form.span)
        if update == "unitwise" and len(atoms) > 1:
            _require_zero_diagonal(ctx, form, layer.name)
        part = derivative(ctx, form, layer.name, "keep").scaled(-1)
        for reduction in part.parts:
            if update != "unitwise" and set(_layer_atoms(reduction.form, layer.name)):
                raise DSLUnsupportedError(f"the field of layer {layer.name} depends on the layer itself ({form.label})", form.span)
        if part.temps and update != "unitwise":
            for temp in part.temps:
                for reduction in temp.parts:
                    if any(ctx.depends(a.name, layer.name) for a in reduction.form.atoms.values() if a.kind == "let"):
                        raise DSLUnsupportedError(f"the energy is not linear in layer {layer.name} ({form.label})", form.span)
        field.extend(part)
    pool = layer.pooling.block if layer.pooling else ()
    kernel = LayerKernel(layer.name, layer.unit, update, field, pool=pool)
    if update == "unitwise":
        kernel.coupling, kernel.why = _coupling(ctx, forms, layer)
    return kernel


def _coupling(ctx: Context, forms, layer) -> tuple[Program | None, str]:
    """-d2E/dL dL of a unit-wise layer, shaped layer shape + layer shape; or None and why it cannot be formed.

    A unit-wise sweep keeps the layer's field and, after each unit's draw, adds (new - old) times this
    coupling's row to it: exact when the field is affine in every other unit, with a slope that does not
    depend on the layer (the energy has no products of three or more of its units, no lets carrying it
    nonlinearly) and the coupling's indices are distinct plain ones. The zero diagonal is the model's
    (`_require_zero_diagonal`). The coupling may depend on other layers (three-way terms): then it is one
    matrix per batch row. The program holds each pair of units once, at (first, second): the coupling is
    it plus its transpose (the second derivative is symmetric), which is also exactly symmetric in floating point.
    """
    name = layer.name
    program = Program()
    for form in forms:
        atoms = _layer_atoms(form, name)
        carriers = [s for s, a in form.atoms.items() if a.kind == "let" and ctx.depends(a.name, name)]
        for carrier in carriers:  # a let linear in the layer, entering linearly and alone, adds no coupling
            try:
                _let_jacobian(ctx, form.atoms[carrier], layer, array=False)
            except DSLUnsupportedError:
                return None, f"let '{form.atoms[carrier].name}' is not linear in layer {name} ({form.label})"
            if any(sympy.diff(form.expr, carrier, other) != 0 for other in carriers + atoms):
                return None, f"a let carries units of layer {name} into a product with the layer ({form.label})"
        for k, a in enumerate(atoms):
            for b in atoms[k + 1:]:  # one order of each pair: the code generator adds the transpose
                second = sympy.diff(form.expr, a, b)
                if second == 0:
                    continue
                if any(second.has(s) for s in atoms):
                    return None, f"the coupling of layer {name}'s units depends on the layer itself ({form.label})"
                output = form.atoms[a].indices + form.atoms[b].indices
                names = [axis.plain for axis in output]
                if None in names or len(set(names)) != len(names):
                    return None, (f"the coupling of layer {name}'s units is read at shared or affine indices "
                                  f"({form.label})")
                program.parts.append(Reduction(_with(form, -second), output, layer.shape * 2, "keep"))
    return program, ""


def _require_zero_diagonal(ctx: Context, form: ScalarForm, layer: str) -> None:
    """Units coupled to units of their own layer: a unit must not couple to itself."""
    for atom in form.atoms.values():
        if atom.kind == "param" and "zero_diagonal" in ctx.model.param(atom.name).constraints:
            return
    raise DSLUnsupportedError(
        f"term couples units of layer {layer} through a parameter without ': zero_diagonal' ({form.label}); "
        f"a unit cannot be coupled to itself", form.span)


def _quadratic_kernel(ctx: Context, forms, layer, update: str) -> LayerKernel:
    """Field, precision (and joint couplings) of a layer whose energy is a positive quadratic in it (Gaussian-like)."""
    name = layer.name
    field, quadratic, hessian = Program(), Program(), Program()
    for form in forms:
        atoms = _layer_atoms(form, name)
        carriers = [s for s, a in form.atoms.items() if a.kind == "let" and ctx.depends(a.name, name)]
        zero = {s: 0 for s in atoms}
        for symbol in atoms:
            second = sympy.diff(form.expr, symbol, 2)
            if sympy.diff(second, symbol) != 0 or any(sympy.diff(second, s) != 0 for s in atoms):
                raise DSLUnsupportedError(f"the energy is not quadratic in {layer.unit} layer {name} ({form.label})", form.span)
            if second != 0:
                _check_positive(form, second, layer)
                quadratic.parts.append(Reduction(_with(form, second), form.atoms[symbol].indices, layer.shape, "keep"))
            linear = sympy.diff(form.expr, symbol).subs(zero)
            if any(linear.has(c) for c in carriers):
                linear = linear.subs({c: 0 for c in carriers})
            if linear != 0:
                field.parts.append(Reduction(_with(form, -linear), form.atoms[symbol].indices, layer.shape, "keep"))
        for carrier in carriers:
            linear = sympy.diff(form.expr, carrier).subs(zero).subs({c: 0 for c in carriers})
            if linear != 0:
                field.extend(_through_lets(ctx, form, layer, -linear, [carrier]))
            if any(sympy.diff(form.expr, carrier, a) != 0 for a in atoms):
                raise DSLUnsupportedError(f"term couples units of {layer.unit} layer {name} ({form.label})", form.span)
        cross = [(a, b) for a in atoms for b in atoms if a != b and sympy.diff(form.expr, a, b) != 0]
        curved = [c for c in carriers if any(sympy.diff(form.expr, c, d) != 0 for d in carriers)]
        if cross or curved:
            if update != "joint":
                raise DSLUnsupportedError(f"term couples units of {layer.unit} layer {name} ({form.label})", form.span)
            hessian.extend(_hessian(ctx, form, layer, curved, cross))
    if quadratic.empty:
        raise DSLUnsupportedError(
            f"energy is not bounded below in {layer.unit} layer {name}: it has no positive v^2 term "
            f"(add a containment term such as (v[i] - a[i])^2 / 2)"
        )
    kernel = LayerKernel(name, layer.unit, update, field, quadratic, hessian if not hessian.empty else None)
    if update == "joint":  # dE/dx at x itself: hybrid Monte Carlo's force, without the precision matrix
        kernel.gradient = Program()
        for form in forms:
            kernel.gradient.extend(derivative(ctx, form, name, "keep"))
    return kernel


def _check_positive(form: ScalarForm, second: sympy.Expr, layer) -> None:
    if second.is_positive:
        return
    coefficient = _display(form, second / 2)
    symbol = next(s for s, a in form.atoms.items() if a.name == layer.name)
    unit = str(form.atoms[symbol])
    term = form.label.split(":")[0]
    reason = "not bounded below" if second.is_nonpositive else "not provably bounded below"
    raise DSLUnsupportedError(
        f"energy is {reason} in {layer.unit} layer {layer.name}: coefficient of {unit}^2 is {coefficient} "
        f"in term '{term}' (it must be positive)", form.span,
        notes=("write a variance or scale as exp(log_sigma) (or softplus(...)) to keep it positive",),
    )


def _hessian(ctx: Context, form: ScalarForm, layer, carriers, cross) -> Program:
    """Off-diagonal precision of a Gaussian layer: lets linear in it, squared with weights >= 0."""
    program = Program()
    if cross:
        raise DSLUnsupportedError(
            f"cannot show that the precision of {layer.unit} layer {layer.name} is positive definite ({form.label})", form.span)
    for carrier in carriers:
        others = [c for c in carriers if c != carrier and sympy.diff(form.expr, carrier, c) != 0]
        weight = sympy.diff(form.expr, carrier, 2)
        if others or not weight.is_nonnegative or any(weight.has(s) for s in carriers):
            raise DSLUnsupportedError(
                f"cannot show that the precision of {layer.unit} layer {layer.name} is positive definite ({form.label})", form.span)
        program.extend(_through_lets(ctx, form, layer, weight, [carrier, carrier]))
    return program


def _through_lets(ctx: Context, form: ScalarForm, layer, weight: sympy.Expr, carriers) -> Program:
    """sum of weight * J[p1.., site1] * J[p2.., site2]...: a let-carried term mapped to layer axes."""
    program = Program()
    reduced = _with(form, weight)
    atoms, extents, expr, output = dict(reduced.atoms), dict(form.extents), weight, ()
    for carrier in carriers:
        atom = form.atoms[carrier]
        jacobian = ctx.jacobians.get((atom.name, layer.name)) or _let_jacobian(ctx, atom, layer)
        ctx.jacobians[(atom.name, layer.name)] = jacobian
        program.temps.append(jacobian)
        axes = tuple(ctx.fresh("p") for _ in layer.shape)
        site = tuple(a.plain for a in atom.indices)
        j = Atom(jacobian.name, "temp", plain(axes + site), jacobian.batched)
        symbol = ctx.table.symbol(j)
        atoms[symbol] = j
        extents.update(zip(axes, layer.shape))
        expr = expr * symbol
        output += plain(axes)
    shape = layer.shape * len(carriers)
    program.parts.append(Reduction(ScalarForm(expr, atoms, extents, (), form.label, form.span), output, shape, "keep"))
    return program


def _let_jacobian(ctx: Context, atom: Atom, layer, array: bool = True) -> Compute:
    """d let[site] / d layer[...], for a let linear in the layer, as an array (layer axes, let axes).

    array: the array will be computed (the quadratic kernels); False only checks that the let is linear.
    """
    let = ctx.model.let(atom.name)
    parts = []
    for body in ctx.let_forms[let.name]:
        for symbol, inner in body.atoms.items():
            if inner.kind == "let" and ctx.depends(inner.name, layer.name):
                raise DSLUnsupportedError(f"let '{let.name}' reaches layer {layer.name} through another let", body.span)
            if inner.name != layer.name:
                continue
            d = sympy.diff(body.expr, symbol)
            if any(d.has(s) for s, a in body.atoms.items() if a.name == layer.name):
                raise DSLUnsupportedError(f"let '{let.name}' is not linear in layer {layer.name}", body.span)
            if any(a.plain is None for a in inner.indices):
                raise DSLUnsupportedError(f"let '{let.name}' reads {inner} at affine indices", body.span)
            output = inner.indices + plain(let.indices)
            if array and len({a.plain for a in output}) != len(output):  # du[k]/dx[p] would be delta(p, k)
                raise DSLUnsupportedError(
                    f"let '{let.name}[{', '.join(let.indices)}]' reads {inner} at its own index: its derivative in "
                    f"layer {layer.name} is a diagonal, which the compiler cannot form", body.span,
                    notes=(f"write that part of the let in the energy terms themselves, or read {layer.name} at "
                           f"indices the let sums over",))
            parts.append(Reduction(_with(body, d), output, layer.shape + let.shape, "keep"))
    batched_parts = any(p.batched for p in parts)
    return Compute(ctx.fresh(f"J_{let.name}"), parts, layer.shape + let.shape, batched_parts, f"d{let.name}/d{layer.name}")
