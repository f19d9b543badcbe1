"""Derive everything a sampler and a trainer need from the energy alone.

For every sampled layer: its field (natural parameter) and, for Gaussian
layers, its quadratic coefficients; the free energy with one colour class of
the schedule marginalised; and for every parameter the statistics -dE/dtheta
whose data-minus-model difference is the log-likelihood gradient. Each is a
Program of Reductions (see kernels.py); no array code is written here.
"""

from __future__ import annotations

from pathlib import Path

import sympy

from .. import units
from ..errors import DSLUnsupportedError
from ..ir.expr import Affine
from ..ir.graph import GibbsStep
from ..ir.model import ModelIR
from .kernels import Compute, Derivation, LayerKernel, Marginalisation, Program, Reduction
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
    marginalisations = [
        Marginalisation(summed, _kept(model, summed), _kept_energy(ctx, forms, summed))
        for summed in _summable_classes(schedule)
    ] or [Marginalisation((), _kept(model, ()), [Reduction(f, (), (), "keep") for f in forms])]
    statistics = {}
    for param in model.params:
        program = Program()
        for form in forms:
            program.extend(derivative(ctx, form, param.name, "sum").scaled(-1))
        statistics[param.name] = program
    return Derivation(model, lets, energy, layers, marginalisations, statistics)


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
                    _let_jacobian(ctx, atom, ctx.model.layer(layer))  # raises unless linear in the layer
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
    return LayerKernel(layer.name, layer.unit, update, field, pool=pool)


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
    return LayerKernel(name, layer.unit, update, field, quadratic, hessian if not hessian.empty else None)


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


def _let_jacobian(ctx: Context, atom: Atom, layer) -> Compute:
    """d let[site] / d layer[...], for a let linear in the layer, as an array (layer axes, let axes)."""
    let = ctx.model.let(atom.name)
    parts = []
    for body in ctx.let_forms[let.name]:
        for symbol, inner in body.atoms.items():
            if inner.kind == "let" and ctx.depends(inner.name, layer.name):
                raise DSLUnsupportedError(f"let '{let.name}' reaches layer {layer.name} through another let")
            if inner.name != layer.name:
                continue
            d = sympy.diff(body.expr, symbol)
            if any(d.has(s) for s, a in body.atoms.items() if a.name == layer.name):
                raise DSLUnsupportedError(f"let '{let.name}' is not linear in layer {layer.name}")
            if any(a.plain is None for a in inner.indices):
                raise DSLUnsupportedError(f"let '{let.name}' reads {inner} at affine indices")
            output = inner.indices + plain(let.indices)
            parts.append(Reduction(_with(body, d), output, layer.shape + let.shape, "keep"))
    batched_parts = any(p.batched for p in parts)
    return Compute(ctx.fresh(f"J_{let.name}"), parts, layer.shape + let.shape, batched_parts, f"d{let.name}/d{layer.name}")
