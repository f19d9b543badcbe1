"""Emit the Python module of a compiled model from its derivation.

The module is plain, readable array code over `xp` (numpy or cupy): one
function per kernel, a comment per energy term pointing at its .dgm line,
and the backend's prelude of stable kernels and samplers inlined at the top.
"""

from __future__ import annotations

from pathlib import Path

from .. import __version__, resources, units
from ..errors import DSLUnsupportedError
from ..symbolic.kernels import Covariance, Derivation, LayerKernel, Program
from .backends import Backend
from .text import comment_text, docstring_text
from .writer import FunctionWriter

def _in_library(filename: str) -> bool:
    """Whether the model comes from the standard library (then `pgmdsl compile NAME` regenerates it)."""
    try:
        return Path(filename).resolve().parent == resources.models_dir().resolve()
    except (OSError, ValueError):  # a name no file can have (NUL, too long) is not a library file
        return False


class ModuleEmitter:
    def __init__(self, model, derivation: Derivation, backend: Backend, dtype: str):
        self.model = model
        self.derivation = derivation
        self.backend = backend
        self.dtype = dtype
        self.chunks: list[str] = []

    # ---- whole module ----
    def emit(self) -> str:
        self.chunks.append(self._header())
        self.chunks.append(self._tables())
        self._energy()
        for kernel in self.derivation.layers.values():
            self._layer(kernel)
        self._free_energy()
        self._statistics()
        return "\n\n".join(chunk.rstrip() for chunk in self.chunks) + "\n"

    def _header(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.model.sizes.items())
        regenerate = " ".join(f"--set {k}={v}" for k, v in self.model.arguments.items())
        target = self.model.name if _in_library(self.model.filename) else self.model.filename
        return (
            f'"""pgmdsl generated module: do not edit.\n\n'
            f"model {self.model.name}({sizes}) from {docstring_text(Path(self.model.filename).name)}\n"
            f"backend {self.backend.name}, dtype {self.dtype}, pgmdsl {__version__}\n"
            f"regenerate: pgmdsl compile {docstring_text(target)} {regenerate} --backend {self.backend.name} "
            f"--dtype {self.dtype}\n"
            f'"""\n'
            f"{self.backend.array_module}\n\n"
            f"DTYPE = xp.{self.dtype}\n\n"
            f"{self.backend.prelude}"
            f"{self._unit_helpers()}"
        )

    def _unit_helpers(self) -> str:
        """The helper functions (and the backend modules they use) of the unit types this model's layers have."""
        used: list = []
        for layer in self.model.layers:
            unit = units.get(layer.unit) if layer.unit else None
            if unit is not None and unit.helpers and unit.helpers not in [u.helpers for u in used]:
                used.append(unit)
        if not used:
            return ""
        chunks = []
        for module in dict.fromkeys(m for unit in used for m in unit.modules):
            if module not in self.backend.modules:
                raise DSLUnsupportedError(f"{', '.join(u.name for u in used if module in u.modules)} units need the "
                                          f"module {module!r}, which the {self.backend.name} backend does not provide")
            chunks.append(self.backend.modules[module])
        chunks += [f"# ---- {unit.name} units ----\n{unit.helpers.strip()}" for unit in used]
        return "\n\n" + "\n\n\n".join(chunks) + "\n"

    def _tables(self) -> str:
        d = self.derivation
        layers = []
        update = {name: kernel.update for name, kernel in d.layers.items()}
        for layer in self.model.layers:
            layers.append(
                f'    {layer.name!r}: {{"shape": {layer.shape}, "unit": {layer.unit!r}, "role": {layer.role!r}, '
                f'"update": {update.get(layer.name)!r}}},'
            )
        schedule = tuple(step.layers for step in self.model.schedule)
        params = "\n".join(f"    {p.name!r}: {p.shape}," for p in self.model.params)
        return (
            "# ---- the model ----\n"
            "LAYERS = {\n" + "\n".join(layers) + "\n}\n"
            "PARAMS = {\n" + params + "\n}\n"
            f"SCHEDULE = {schedule!r}\n"
            f"KEPT = {d.kept!r}\n"
            f"MARGINALISED = {d.marginalised!r}\n"
            "FREE_ENERGIES = {\n" + "\n".join(
                f"    {m.summed!r}: ({m.kept!r}, {self._free_energy_name(k)!r}),"
                for k, m in enumerate(d.marginalisations)) + "\n}"
        )

    def _function(self, signature: str, doc: str, writer: FunctionWriter, tail: list[str]) -> None:
        lines = [f"def {signature}:", f'    """{doc}"""']
        lines += writer.unpacking() + writer.body + [f"    {t}" for t in tail]
        self.chunks.append("\n".join(lines))

    def _writer(self) -> FunctionWriter:
        return FunctionWriter(self.derivation, self.backend.printer)

    def _program(self, writer: FunctionWriter, program: Program, target: str, weights=None, comments=True) -> None:
        for temp in program.temps:
            if isinstance(temp, Covariance):
                self._covariance(writer, temp)
            else:
                writer.compute(temp)
        writer.accumulate(target, program.parts, weights, comments=comments)

    def _covariance(self, writer: FunctionWriter, temp: Covariance) -> None:
        """Cov[L | rest] of a summed-out quadratic layer, one per row: the unit's variance or the inverse precision."""
        if temp.name in writer.computed:
            return
        writer.computed.add(temp.name)
        writer.taken.add(temp.name)
        writer.comment(temp.comment)
        if temp.joint:
            value = f"xp.linalg.inv(precision_{temp.layer}(p, s))"
            if temp.diagonal:
                value = f"xp.diagonal({value}, axis1=-2, axis2=-1)"
            value = f"xp.reshape({value}, (-1,) + {temp.shape})"
        else:
            unit = units.get(self.model.layer(temp.layer).unit)
            value = unit.variance.format(f=f"field_{temp.layer}(p, s)", q=f"precision_{temp.layer}(p, s)")
        writer.line(f"{temp.name} = xp.broadcast_to({value}, (batch_size(s),) + {temp.shape})")

    # ---- energy and free energy ----
    def _energy(self) -> None:
        writer = self._writer()
        target = writer.name("energy")
        writer.accumulate(target, self.derivation.energy, comments=True)
        self._function("energy(p, s)", "E(state): the energy of each batch row.", writer, [f"return {target}"])

    def _free_energy(self) -> None:
        for number, marginalisation in enumerate(self.derivation.marginalisations):
            self._one_free_energy(self._free_energy_name(number), marginalisation)

    def _free_energy_name(self, number: int) -> str:
        """free_energy, then free_energy_sum_<layers>; numbered where layer names with '_' would make two alike."""
        names: list[str] = []
        for k, marginalisation in enumerate(self.derivation.marginalisations):
            stem = "free_energy" if k == 0 else "free_energy_sum_" + "_".join(marginalisation.summed)
            name, count = stem, 1
            while name in names:
                count += 1
                name = f"{stem}_{count}"
            names.append(name)
        return names[number]

    def _one_free_energy(self, function: str, marginalisation) -> None:
        d = self.derivation
        writer = self._writer()
        writer.line("beta = xp.asarray(beta, dtype=DTYPE)")
        writer.taken.add("beta")
        target = writer.name("free")
        writer.accumulate(target, marginalisation.kept_energy, comments=True)
        writer.line(f"{target} = beta[..., None] * {target}")
        for name in marginalisation.kept:  # p(x) ∝ measure(x) exp(-E): untempered, AIS's base shares it
            layer, unit = self.model.layer(name), units.get(self.model.layer(name).unit)
            if layer.role != "input" and unit is not None and unit.log_measure:
                writer.comment(f"{name} kept: minus the log of its base measure")
                measure = unit.log_measure.format(x=f"s[{name!r}]")
                writer.line(f"{target} = {target} - xp.sum({measure}, axis={tuple(range(-len(layer.shape), 0))})")
        for name in marginalisation.summed:
            kernel = d.layers[name]
            layer = self.model.layer(name)
            rank = len(layer.shape)
            axes = tuple(range(-rank, 0))
            given = f"fields[{name!r}] if fields is not None and {name!r} in fields else {self._full_field(name, layer.shape)}"
            field = f"tempered(beta, {rank}) * ({given})"
            writer.comment(f"{name} summed out: minus its log-partition function given the other layers")
            unit = units.get(kernel.unit)
            if unit.quadratic:
                f, q = writer.name(f"f_{name}"), writer.name(f"q_{name}")
            offset = f"precision_offsets[{name!r}]"
            if kernel.hessian is not None:  # units coupled through the precision: one joint Gaussian per row
                writer.line(f"{f} = xp.reshape({field}, beta.shape + (-1, {layer.size}))")
                writer.line(f"{q} = tempered(beta, 2) * precision_{name}(p, s)")  # (batch, n, n) matrices
                writer.line(f"if precision_offsets is not None and {name!r} in precision_offsets:")
                writer.line(f"    {q} = {q} + diagonal(xp.reshape({offset}, xp.shape({offset})[:-{rank}] + ({layer.size},)))")
                writer.line(f"{target} = {target} - gaussian_joint_log_partition({f}, {q}, overwrite=True)")
            elif unit.quadratic:
                writer.line(f"{f} = {field}")
                writer.line(f"{q} = tempered(beta, {rank}) * precision_{name}(p, s)")
                writer.line(f"if precision_offsets is not None and {name!r} in precision_offsets:")
                writer.line(f"    {q} = {q} + {offset}")
                writer.line(f"{target} = {target} - xp.sum({unit.log_partition.format(f=f, q=q)}, axis={axes})")
            elif kernel.update == "pooled":
                writer.line(f"{target} = {target} - xp.sum(pooled_log_partition({field}, {kernel.pool}), axis={axes})")
            else:
                partition = unit.log_partition.format(f=field)
                axes = axes[unit.event_axes:]
                summed = f"xp.sum({partition}, axis={axes})" if axes else partition
                writer.line(f"{target} = {target} - {summed}")
        summed = ", ".join(marginalisation.summed) or "nothing"
        doc = (f"F({', '.join(marginalisation.kept)}) = -log of the sum over {summed} of exp(-beta E); "
               f"beta may be an array (one free energy per value, leading axis); fields: the summed layers' "
               f"fields (field_L) when the caller has them already; precision_offsets: an extra precision added "
               f"to the tempered one of summed quadratic layers (AIS's base model), shaped beta's axes + "
               f"(batch,) + the layer's shape, broadcastable.")
        writer.taken.add("precision_offsets")
        self._function(f"{function}(p, s, beta=1.0, fields=None, precision_offsets=None)", doc, writer,
                       [f"return {target}"])

    # ---- layers ----
    def _layer(self, kernel: LayerKernel) -> None:
        name = kernel.layer
        layer = self.model.layer(name)
        writer = self._writer()
        target = writer.name("field")
        self._program(writer, kernel.field, target)
        self._function(f"field_{name}(p, s)", f"-dE/d{name} at {name} = 0: the natural parameter of {name} given the rest.",
                       writer, [f"return {target}"])
        if kernel.coupling is not None:
            self._coupling(kernel, layer)
        if units.get(kernel.unit).quadratic:
            self._precision(kernel, layer)
        if kernel.gradient is not None:
            writer = self._writer()
            target = writer.name("gradient")
            self._program(writer, kernel.gradient, target)
            self._function(f"gradient_{name}(p, s)", f"dE/d{name} at the state, {name} included (a hybrid Monte Carlo "
                           f"sampler's force: no precision matrix).", writer,
                           [f"return xp.broadcast_to({target}, s[{name!r}].shape)"])
        self._mean(kernel, layer)
        self._sample(kernel, layer)
        self._draw(kernel, layer)

    def _precision(self, kernel: LayerKernel, layer) -> None:
        writer = self._writer()
        target = writer.name("precision")
        self._program(writer, Program([], kernel.quadratic.parts), target)
        tail = [f"return {target}"]
        if kernel.hessian is not None:
            size = layer.size
            coupled = writer.name("coupling")
            self._program(writer, kernel.hessian, coupled)
            matrix = writer.name("matrix")
            tail = [  # a fresh array the caller owns (the joint kernels factor it in place), diagonal added in place
                f"{coupled} = xp.reshape({coupled}, (-1, {size}, {size}))",
                f"diagonal = xp.broadcast_to(xp.reshape({target}, (-1, {size})), ({coupled}.shape[0], {size}))",
                # C order: the diagonal view below writes into it; a fresh product of its own needs no copy
                f"{matrix} = xp.ascontiguousarray({coupled}, dtype=DTYPE)" if writer.fresh.get(coupled) else
                f"{matrix} = xp.array({coupled}, dtype=DTYPE, order=\"C\", copy=True)",
                f"xp.reshape({matrix}, (-1, {size * size}))[:, ::{size + 1}] += diagonal",
                f"return {matrix}",
            ]
            doc = f"d2E/d{layer.name}2: the full precision matrix of {layer.name} given the rest, one per row."
        else:
            doc = f"d2E/d{layer.name}_i^2: the precision of each unit of {layer.name} given the rest."
        self._function(f"precision_{layer.name}(p, s)", doc, writer, tail)

    def _full_field(self, name: str, shape) -> str:
        """field_L(p, s) with its batch axis; broadcast only when no part of the field has one."""
        kernel = self.derivation.layers[name]
        if any(part.batched for part in kernel.field.parts):
            return f"field_{name}(p, s)"
        return f"xp.broadcast_to(field_{name}(p, s), (batch_size(s),) + {shape})"

    def _annealed_field(self, name: str, shape, given: bool = False) -> list[str]:
        """Lines leaving the field in `field`, tempered only when annealing asks for it (no cost otherwise).

        given: the function takes the field as an argument (`field=None`: compute it).
        """
        compute = self._full_field(name, shape)
        return [f"field = {compute} if field is None else field" if given else f"field = {compute}",
                "if beta != 1.0 or offset is not None:",
                "    field = anneal(field, beta, offset)"]

    def _mean(self, kernel: LayerKernel, layer) -> None:
        name, shape = layer.name, layer.shape
        field, unit = "field", units.get(kernel.unit)
        if kernel.hessian is not None:
            body = [f"field = xp.reshape({field}, (-1, {layer.size}))",
                    *self._tempered_precision(layer, joint=True),
                    f"return xp.reshape(gaussian_joint_mean(field, precision, overwrite=True), (-1,) + {shape})"]
        elif unit.quadratic:
            body = [*self._tempered_precision(layer), f"return {unit.mean.format(f=field, q='precision')}"]
        elif kernel.update == "pooled":
            body = [f"return pooled_mean({field}, {kernel.pool})"]
        else:
            body = [f"return {unit.mean.format(f=field)}"]
        body = self._annealed_field(name, shape) + body
        doc = (f"E[{name} | rest]" + (" for each unit given all other units" if kernel.update == "unitwise" else "")
               + "; at inverse temperature beta with an extra field `offset` (annealing).")
        signature = f"mean_{name}(p, s, beta=1.0, offset=None)"
        if unit.quadratic:
            signature = signature[:-1] + ", precision_offset=None)"
            doc += " precision_offset: an extra precision (annealing)."
        self.chunks.append("\n".join([f"def {signature}:", f'    """{doc}"""']
                                     + [f"    {b}" for b in body]))

    @staticmethod
    def _tempered_precision(layer, joint: bool = False) -> list[str]:
        """Lines leaving beta * precision (+ precision_offset, AIS's base share) in `precision`."""
        offset = "precision_offset"
        if joint:  # (batch, n, n) matrices: no copy for beta 1 (beta is a number here, as in _annealed_field)
            offset = f"diagonal(xp.reshape(precision_offset, (-1, {layer.size})))"
            return [f"precision = precision_{layer.name}(p, s)",
                    "if beta != 1.0:",
                    "    precision = beta * precision",
                    "if precision_offset is not None:",
                    f"    precision = precision + {offset}"]
        return [f"precision = beta * precision_{layer.name}(p, s)",
                "if precision_offset is not None:",
                f"    precision = precision + {offset}"]

    def _sample(self, kernel: LayerKernel, layer) -> None:
        name, shape = layer.name, layer.shape
        field, unit = "field", units.get(kernel.unit)
        if kernel.update == "unitwise" and kernel.coupling is not None:
            body = self._incremental_sweep(kernel, layer)
            doc = (f"One Gibbs sweep over the units of {name}, one at a time: they are coupled to each other. "
                   f"The field is computed once; each draw adds (new - old) times its row of coupling_{name} "
                   f"to it.")
        elif kernel.update == "unitwise":
            groups = shape[:len(shape) - unit.event_axes]
            draw = unit.sample.format(f=f"anneal(field_{name}(p, state), beta, offset)[index]")
            body = [
                f"# the whole field again for every unit: {comment_text(kernel.why)}",
                f"units = xp.array(s[{name!r}], dtype=DTYPE, copy=True)",
                f"state = {{**s, {name!r}: units}}",
                f"for unit in product(*(range(n) for n in {groups})):",
                "    index = (slice(None),) + unit",
                f"    units[index] = {draw}",
                "return units",
            ]
            doc = f"One Gibbs sweep over the units of {name}, one at a time: they are coupled to each other."
        elif kernel.hessian is not None:
            body = [f"field = xp.reshape({field}, (-1, {layer.size}))",
                    *self._tempered_precision(layer, joint=True),
                    f"return xp.reshape(gaussian_joint_sample(field, precision, rng, overwrite=True), (-1,) + {shape})"]
            doc = f"An exact draw of {name} from its joint Gaussian conditional (Cholesky)."
        elif unit.quadratic:
            body = [*self._tempered_precision(layer),
                    f"mean = {unit.mean.format(f=field, q='precision')}",
                    f"return {unit.sample.format(m='mean', f=field, q='precision')}"]
            doc = f"Draw {name} from its conditional: independently per unit."
        elif kernel.update == "pooled":
            body = [f"return pooled_sample({field}, {kernel.pool}, rng)"]
            doc = f"Draw {name}: each pooling block is one categorical over its units and 'all off'."
        else:
            body = [f"return {unit.sample.format(f=field)}"]
            doc = f"Draw {name} from its conditional given the rest."
        signature = f"sample_{name}(p, s, rng, beta=1.0, offset=None)"
        doc += " beta, offset: inverse temperature and extra field (annealing)."
        if kernel.update != "unitwise":
            body = self._annealed_field(name, shape, given=True) + body
            signature = signature[:-1] + ", field=None)"
            doc += f" field: field_{name}(p, s), when the caller has it already."
            if unit.quadratic:
                signature = signature[:-1] + ", precision_offset=None)"
                doc += " precision_offset: an extra precision (annealing)."
        self.chunks.append("\n".join([f"def {signature}:", f'    """{doc}"""'] + [f"    {b}" for b in body]))

    def _coupling(self, kernel: LayerKernel, layer) -> None:
        """coupling_L(p, s): -d2E/dL dL of a unit-wise layer, layer shape + layer shape (one per row if batched)."""
        writer = self._writer()
        target = writer.name("coupling")
        self._program(writer, kernel.coupling, target)
        shape = layer.shape * 2
        rank = len(layer.shape)
        batched = any(part.batched for part in kernel.coupling.parts)
        lead = (0,) if batched else ()
        swap = lead + tuple(n + len(lead) for n in tuple(range(rank, 2 * rank)) + tuple(range(rank)))
        full = shape if not batched else f"xp.shape({target})[:1] + {shape}"
        out = writer.name("symmetric")
        # each pair of units once: add the transpose (the sum is exactly symmetric), into a row-major array
        tail = [f"{target} = xp.broadcast_to({target}, {full})",
                f"{out} = xp.empty(xp.shape({target}), dtype={target}.dtype)",
                f"xp.add({target}, xp.transpose({target}, {swap}), out={out})",
                f"return {out}"]
        doc = (f"-d2E/d{layer.name} d{layer.name}: how much each unit's field changes per unit change of another "
               f"unit of {layer.name}, shaped {layer.name}'s shape twice; symmetric" + (", one per batch row (it depends on another layer)." if batched else "."))
        self._function(f"coupling_{layer.name}(p, s)", doc, writer, tail)

    def _incremental_sweep(self, kernel: LayerKernel, layer) -> list[str]:
        """The body of a unit-wise sweep that keeps the annealed field and updates it after each unit's draw.

        The same draws, in the same order, as recomputing the field for every unit (to rounding): the field is
        affine in each other unit with slope coupling_L (derive._coupling), so beta * coupling * change is the
        change of beta * field + offset.
        """
        name, shape = layer.name, layer.shape
        unit = units.get(kernel.unit)
        events = unit.event_axes
        groups = shape[:len(shape) - events]
        size = layer.size
        event = 1
        for n in shape[len(shape) - events:]:
            event *= n
        batched = any(part.batched for part in kernel.coupling.parts)
        full = f"field_{name}(p, state)"
        if not any(part.batched for part in kernel.field.parts):
            full = f"xp.broadcast_to({full}, units.shape)"
        column = f"change[(slice(None),{' None,' * len(shape)})]"
        if batched and not events:  # one coupling matrix per row (three-way terms): rows (batch,) + shape
            update = f"{column} * coupling[(slice(None),) + unit]"
        elif batched:  # rows (batch, event, units)
            row = "coupling[(slice(None),) + unit]"
            update = (f"xp.reshape(xp.matmul(xp.reshape(change, (-1, 1, {event})), "
                      f"xp.reshape({row}, (-1, {event}, {size}))), field.shape)")
        elif events:
            update = f"xp.reshape(xp.reshape(change, (-1, {event})) @ xp.reshape(coupling[unit], ({event}, {size})), field.shape)"
        else:
            update = f"{column} * coupling[unit]"
        draw = unit.sample.format(f="field[index]")
        return [
            f"units = xp.array(s[{name!r}], dtype=DTYPE, copy=True)",
            f"state = {{**s, {name!r}: units}}",
            f"field = xp.array(anneal({full}, beta, offset), copy=True)",
            f"coupling = coupling_{name}(p, state)",
            "if beta != 1.0:",
            "    coupling = beta * coupling",
            f"for unit in product(*(range(n) for n in {groups})):",
            "    index = (slice(None),) + unit",
            f"    new = {draw}",
            "    change = new - units[index]",
            "    units[index] = new",
            f"    field += {update}",
            "return units",
        ]

    def _draw(self, kernel: LayerKernel, layer) -> None:
        """draw_L(mean, rng): a sample from conditional means already computed (saves a product)."""
        if kernel.update == "pooled":
            body = f"return pooled_draw(mean, {kernel.pool}, rng)"
        elif kernel.update == "block" and units.get(kernel.unit).draw:
            body = f"return {units.get(kernel.unit).draw.format(m='mean')}"
        else:
            return
        doc = f"Draw {layer.name} given its conditional means (as returned by mean_{layer.name})."
        self.chunks.append("\n".join([f"def draw_{layer.name}(mean, rng):", f'    """{doc}"""', f"    {body}"]))

    # ---- gradient statistics ----
    def _statistics(self) -> None:
        writer = self._writer()
        results = []
        for name, program in self.derivation.statistics.items():
            target = writer.name(f"stat_{name}")
            writer.comment(name)
            self._program(writer, program, target, weights="w", comments=False)
            results.append(f"{name!r}: {target}")
        doc = ("Weighted sums over the batch (weights w) of -dE/dtheta for every parameter; "
               "data minus model statistics is the log-likelihood gradient.")
        self._function("statistics(p, s, w)", doc, writer, ["return {" + ", ".join(results) + "}"])
        # statistics that read layers into patch matrices find the ones the phases' fields built (prelude
        # `patches`) when called once per phase; concatenated phases would be read again
        self.chunks.append(f"STATISTICS_BY_PHASE = {writer.batched_patches!r}")
