"""Deep Boltzmann machines by their papers' recipe (Salakhutdinov and Hinton 2009, 2012).

A DBM whose layers form a chain v - h1 - ... - hL is first pretrained pair by
pair, bottom up, as RBMs on the features of the pair below; then the whole
model trains jointly: a mean-field data phase started by a bottom-up pass,
persistent chains for the model phase (runtime.train with method="pcd").

Why pretraining counts evidence carefully: in the DBM, h1 hears both v and
h2, but an RBM's h1 hears only v. So the bottom RBM is trained with its
bottom-up input doubled (as if v were there twice, tied: p(h1 | v) =
sigmoid(2 W1'v + b1) but p(v | h1) = sigmoid(W1 h1 + a)), the top one with
its top-down input doubled, and RBMs in between as plain RBMs whose
couplings are halved when they join the DBM; a layer's bias learnt by both
RBMs it sits in is their mean. The same doubling starts the data phase:
q(h_k) from the layer below with doubled input, the top layer with plain
input.

Everything is read from the compiled model, not from parameter names: the
chain from the interaction graph, each parameter's place in it from the
energy (ir.graph.parameter_layers), the conditionals from the generated
module. Doubling an input means passing 2x the neighbour's values to the
generated conditional, exact because a DBM's fields are affine in each
neighbour (every energy the derivation accepts with block updates is).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from ...errors import DSLError
from ...ir.graph import parameter_layers
from ..initialize import initial_value
from ..threads import blas_threads, update_products

log = logging.getLogger("pgmdsl.train")

# Pretraining: the RBM settings of the papers' code (lr 0.05, weight cost 0.001, momentum 0.5 then 0.9 after
# epoch 5, minibatches of 100), but PCD-1 where the code ran CD-1: on digits (1,437 rows, 15 updates an epoch) a
# CD-1-pretrained 64-500-1000 DBM keeps a spurious mode the top RBM never explored (h1 all off, h2 at its biases,
# b2 near -0.17), which joint training at lr 0.001 cannot remove in its updates (test bound -886, log Z 1485);
# PCD-1 pretraining leaves b2 near -2.1 and gives -20.89 after the same joint training (bench/README.md, also
# 64-100-50: -21.32 against -25.70; 64-20-12, where CD-1 is better: -21.99 against -19.06). Epochs: fewer than
# MNIST's 100, for the small datasets this runs on.
PRETRAINING = {"method": "pcd", "epochs": 50, "lr": 0.05, "batch_size": 100, "weight_decay": 0.001, "momentum": 0.9,
               "initial_momentum": 0.5, "momentum_epochs": 5}

# Joint training (../shared/docs/evaluation.md lists the paper's schedule): 100 persistent chains, 5 Gibbs sweeps
# an update, 10 mean-field steps; lr 1e-3 decayed towards 1e-4, weight cost 2e-4, momentum 0.5 then 0.9 after
# epoch 5; sparsity targets 0.2 for h1 and 0.1 above it, cost 1e-3. The paper's geometric decay
# (lr / 1.000015^t) is the inverse schedule lr / (1 + 1.5e-5 t) to within 1% over its first 10^5 updates.
JOINT = {"method": "pcd", "k": 5, "chains": 100, "mean_field_steps": 10, "lr": 0.001, "lr_schedule": "inverse",
         "lr_decay": 1.5e-5, "lr_min": 1e-4, "weight_decay": 2e-4, "momentum": 0.9, "initial_momentum": 0.5,
         "momentum_epochs": 5, "sparsity_cost": 1e-3, "batch_size": 100, "epochs": 100}
SPARSITY = (0.2, 0.1)  # the first hidden layer's target, then every layer above it


@dataclass(frozen=True)
class Chain:
    """A DBM's layers bottom first, the parameters of each adjacent pair (couplings) and of each layer alone."""

    layers: tuple[str, ...]
    couplings: tuple[tuple[str, ...], ...]  # couplings[k]: parameters joining layers[k] and layers[k + 1]
    own: tuple[tuple[str, ...], ...]  # own[k]: parameters of layers[k] alone (its biases, variances)


def chain(model) -> Chain:
    """The model's (a Model's) chain of layers, or a DSLError saying why it is not a DBM the recipe can pretrain."""
    name = model.name
    if model.stack:
        raise DSLError(f"{name} is a stack, not a deep Boltzmann machine")
    info = {layer.name: layer for layer in model.layers}
    inputs = [n for n, layer in info.items() if layer.role == "input"]
    visible = [n for n, layer in info.items() if layer.role == "visible"]
    if inputs or len(visible) != 1:
        raise DSLError(f"the DBM recipe needs one visible layer and no input layers; {name} has visible "
                       f"{', '.join(visible) or 'none'}{' and inputs ' + ', '.join(inputs) if inputs else ''}")
    updates = {layer: update for step in model.schedule for layer, update in step.updates}
    unitwise = [n for n in info if updates.get(n) != "block"]
    if unitwise:
        raise DSLError(f"the DBM recipe needs layers sampled as blocks; {', '.join(unitwise)} of {name} are not")
    graph = model.interactions
    order, previous = [visible[0]], None
    while True:
        onward = [n for n in graph.neighbors(order[-1]) if n != previous]
        if len(onward) > 1 or (onward and onward[0] in order):
            raise DSLError(f"the DBM recipe needs layers in a chain; in {name}, {order[-1]} couples to "
                           f"{', '.join(sorted(graph.neighbors(order[-1])))}")
        if not onward:
            break
        previous = order[-1]
        order.append(onward[0])
    if len(order) != len(info):
        raise DSLError(f"the DBM recipe needs every layer in one chain from {visible[0]}; {name} leaves "
                       f"{', '.join(n for n in info if n not in order)} out")
    if len(order) < 3:
        raise DSLError(f"{name} has {len(order) - 1} hidden layer: it is an RBM; train it without the DBM recipe")
    where = parameter_layers(model.ir)
    couplings = tuple(tuple(p for p, layers in where.items() if layers == {a, b}) for a, b in zip(order, order[1:]))
    own = tuple(tuple(p for p, layers in where.items() if layers == {layer}) for layer in order)
    placed = {p for group in couplings + own for p in group}
    stray = [p for p in where if p not in placed]
    if stray:
        raise DSLError(f"the DBM recipe needs each parameter on one layer or one adjacent pair; {', '.join(stray)} "
                       f"of {name} touch{'es' if len(stray) == 1 else ''} "
                       f"{', '.join(sorted(set().union(*(where[p] for p in stray))) or 'no layer')}")
    return Chain(tuple(order), couplings, own)


def _zeros(compiled, rows: int, given: dict) -> dict:
    """`given` and every other layer at 0: the pair being trained sees no other layer."""
    xp = compiled.xp
    return {n: given[n] if n in given else xp.zeros((rows,) + tuple(i["shape"]), dtype=compiled.dtype)
            for n, i in compiled.layers.items()}


def bottom_up(compiled, structure: Chain, visible) -> dict:
    """The recipe's start of mean-field: q(h_k) given the layer below, doubled but for the top layer."""
    layers = structure.layers
    means = {layers[0]: compiled.xp.asarray(visible, dtype=compiled.dtype)}
    rows = len(means[layers[0]])
    for k in range(1, len(layers)):
        factor = 2.0 if k < len(layers) - 1 else 1.0
        means[layers[k]] = compiled.module_mean(layers[k], _zeros(compiled, rows, {layers[k - 1]: factor * means[layers[k - 1]]}))
    return {n: m for n, m in means.items() if n != layers[0]}


def start_means(compiled, observed: dict) -> dict:
    """Where mean-field over a model's latent layers starts: the doubled bottom-up pass for a DBM chain given its
    visible rows, else {} (each latent mean at 0.5).

    Why for every use (training's monitor, the evaluation's bound), not only the recipe's data phase: in a wide
    DBM a start of 0.5 gives h1 the top-down input of half of every h2 unit, and mean-field settles at a fixed
    point near it; a DBM pretrained 64-500-1000 on digits reconstructed its rows with error 0.24 from there.
    """
    try:
        structure = chain(compiled.model)
    except DSLError:
        return {}
    if set(observed) != {structure.layers[0]}:
        return {}
    return bottom_up(compiled, structure, observed[structure.layers[0]])


def mean_field_start(structure: Chain):
    """Trainer's mean_field_start for this chain: the doubled bottom-up pass from the minibatch's visible rows."""
    def start(compiled, batch: dict) -> dict:
        return bottom_up(compiled, structure, batch[structure.layers[0]])
    return start


class PairPretraining:
    """CD-1 or PCD-1 on one adjacent pair (lower, upper) of the DBM's own conditionals, every other layer at 0.

    up / down: the factor on the lower layer's input to the upper and on the
    upper's input to the lower (2 doubles one, as in the papers). State:
    the momentum of the pair's parameters, the persistent chains (PCD) and the generator.
    """

    def __init__(self, compiled, structure: Chain, pair: int, up: float, down: float, options: dict, rng):
        self.c, self.o, self.rng = compiled, {**PRETRAINING, **options}, rng
        self.lower, self.upper = structure.layers[pair], structure.layers[pair + 1]
        self.up, self.down = up, down
        self.trained = structure.couplings[pair] + structure.own[pair] + structure.own[pair + 1]
        self.velocity = {p: compiled.xp.zeros_like(compiled.params[p]) for p in self.trained}
        self.chains = None  # the lower layer's persistent chains (method "pcd")
        if self.o["method"] not in ("cd", "pcd"):
            raise DSLError(f"DBM pretraining: method must be 'cd' or 'pcd', got {self.o['method']!r}")
        self.matrices = {p.name for p in compiled.model.params if len(p.shape) >= 2}

    def features(self, rows):
        """The upper layer's means given the lower's rows, with this pair's bottom-up factor."""
        return self.c.module_mean(self.upper, _zeros(self.c, len(rows), {self.lower: self.up * rows}))

    def update(self, rows, lr: float, momentum: float) -> float:
        """One CD-1 (or PCD-1) step on a minibatch of the lower layer's values; returns its reconstruction error."""
        c, xp, n = self.c, self.c.xp, len(rows)
        positive = self.features(rows)
        drawn = c.module_sample(self.upper, _zeros(c, n, {self.lower: self.up * rows}), self.rng)
        reconstruction = c.module_mean(self.lower, _zeros(c, n, {self.upper: self.down * drawn}))
        model = reconstruction
        if self.o["method"] == "pcd":  # persistent chains of the lower layer, one Gibbs sweep an update
            if self.chains is None:
                self.chains = rows.copy()
            above = c.module_sample(self.upper, _zeros(c, len(self.chains), {self.lower: self.up * self.chains}),
                                    self.rng)
            self.chains = c.module_sample(self.lower, _zeros(c, len(above), {self.upper: self.down * above}),
                                          self.rng)
            model = self.chains
        m = len(model)
        negative = self.features(model)
        both = _zeros(c, n + m, {self.lower: xp.concatenate((rows, model)),
                                 self.upper: xp.concatenate((positive, negative))})
        weights = xp.concatenate((xp.full(n, lr / n, dtype=c.dtype), xp.full(m, -lr / m, dtype=c.dtype)))
        steps = c.module.statistics(c.params, both, weights)
        for name in self.trained:
            step = steps[name]
            if name in self.matrices:
                step = step - (lr * self.o["weight_decay"]) * c.params[name]
            velocity = self.velocity[name]
            velocity *= momentum
            velocity += step
            c.params[name] += velocity
        return float(xp.mean((reconstruction - rows) ** 2))

    def run(self, rows) -> list[dict]:
        """Every epoch of the pair's pretraining on `rows` (the lower layer's values); one metrics dict an epoch."""
        o, history = self.o, []
        size = o["batch_size"]
        for epoch in range(o["epochs"]):
            started = time.perf_counter()
            momentum = o["initial_momentum"] if epoch < o["momentum_epochs"] else o["momentum"]
            order = self.rng.permutation(len(rows))
            errors = [self.update(rows[order[s:s + size]], o["lr"], momentum) for s in range(0, len(rows), size)]
            bad = [p for p in self.trained if not bool(self.c.xp.all(self.c.xp.isfinite(self.c.params[p])))]
            if bad:
                raise DSLError(f"DBM pretraining of {self.lower}-{self.upper} diverged in epoch {epoch + 1}: "
                               f"{', '.join(bad)} became NaN or infinite; try a smaller pretraining lr")
            history.append({"epoch": epoch + 1, "reconstruction": float(np.mean(errors)),
                            "seconds": time.perf_counter() - started})
        log.info("pretrained %s-%s: reconstruction %.4g", self.lower, self.upper, history[-1]["reconstruction"])
        return history


def pretrain(compiled, data, seed: int = 0, **options) -> list[list[dict]]:
    """Greedy pretraining of every pair, bottom up; the DBM's parameters are set from it. One history per pair.

    options override PRETRAINING (method "cd" or "pcd", epochs, lr, batch_size, weight_decay, momentum,
    initial_momentum, momentum_epochs).
    """
    unknown = sorted(set(options) - set(PRETRAINING))
    if unknown:
        raise DSLError(f"DBM pretraining: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                       f"(options: {', '.join(PRETRAINING)})")
    structure = chain(compiled.model)
    xp, rng = compiled.xp, np.random.default_rng(seed)
    rows = xp.asarray(np.asarray(data, dtype=compiled.dtype).reshape((len(data),) + tuple(
        compiled.layers[structure.layers[0]]["shape"])))
    if not compiled.trained:  # data-dependent initialisers (logit_mean(v)) see the data first, as fit's do
        given = {structure.layers[0]: np.asarray(data, dtype=compiled.dtype)}
        for param in compiled.model.params:
            if param.init.kind == "logit_mean":
                compiled.params[param.name] = xp.asarray(initial_value(param, rng, compiled.dtype, given))
    pairs = len(structure.layers) - 1
    learnt: dict[str, list] = {}  # each layer-own parameter's values from the RBMs it sat in
    histories = []
    for pair in range(pairs):
        up = 2.0 if pair == 0 else 1.0
        down = 2.0 if pair == pairs - 1 else 1.0
        trainer = PairPretraining(compiled, structure, pair, up, down, options, rng)
        with blas_threads(update_products(compiled, 2 * trainer.o["batch_size"])):  # as fit: small products
            histories.append(trainer.run(rows))
        for name in structure.own[pair] + structure.own[pair + 1]:
            learnt.setdefault(name, []).append(compiled.params[name].copy())
        if 0 < pair < pairs - 1:  # a middle RBM: each of its layers hears the other from a neighbour too
            for name in structure.couplings[pair]:
                compiled.params[name] *= 0.5
        rows = trainer.features(rows)
    for name, values in learnt.items():
        compiled.params[name] = sum(values[1:], values[0]) / len(values)
    compiled.trained = True  # the joint training goes on from here
    return histories


def joint_options(model, given: dict) -> dict:
    """The joint training's fit() options for `model` (a Model): JOINT with its sparsity targets per hidden
    layer, then `given`."""
    structure = chain(model)
    hidden = structure.layers[1:]
    targets = {layer: SPARSITY[0] if k == 0 else SPARSITY[1] for k, layer in enumerate(hidden)}
    return {**JOINT, "sparsity_target": targets, **given}


def train(compiled, data, pretraining: dict | None = None, seed: int = 0, **options):
    """The whole recipe: pretraining, then joint training by fit() with joint_options (`options` override them).

    pretraining: options for `pretrain` (None: PRETRAINING), or False to train jointly from the initial
    parameters (the comparison that shows what pretraining does). Returns (one history per pretrained pair, or
    [] without pretraining; the joint History).
    """
    structure = chain(compiled.model)
    histories = [] if pretraining is False else pretrain(compiled, data, seed=seed, **(pretraining or {}))
    history = compiled.fit(data, seed=seed, mean_field_start=mean_field_start(structure),
                           **joint_options(compiled.model, options))
    return histories, history
