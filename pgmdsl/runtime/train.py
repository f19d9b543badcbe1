"""Training any compiled model: CD-k, PCD-k or parallel tempering with SGD, momentum, decay and sparsity.

One update: the data phase clamps the observed layers (visible and input) to a
minibatch; layers the compiler sums out enter through their conditional
means, and latent layers it keeps (a DBM's h2) are filled in by mean-field.
The model phase comes from the negative-phase sampler registered as
`method` (runtime.samplers: k block-Gibbs sweeps from the data for CD,
persistent chains for PCD, tempered persistent chains for PT); the trainer
never branches on its name. The gradient is data statistics minus model
statistics from the generated module. With labels,
the objective may instead be the conditional log p(labels | rest), whose
exact gradient runtime.discriminative computes, or both (hybrid).

Models that pack (runtime.packing), trained generatively without a
sparsity target or clamped layers, take the packed update of runtime.fused
instead: the same draws, a few array calls per minibatch. A run is
reproducible from its seed, checkpoints atomically, resumes exactly, and
stops with a message (keeping its last good checkpoint) when a parameter
or the reconstruction error stops being finite; the warnings numpy raised
on the way go into that one line (runtime.warned), not onto the terminal.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from .. import units
from ..errors import DSLError
from . import checkpoint as checkpoints
from .discriminative import LabelGradient
from .fused import FusedStep, fused_reason
from .initialize import constrain, initial_value
from .labels import label_metrics, label_states
from .options import options as make_options
from .hmc import transitions as hmc_transitions
from .pools import pooling_layers, with_pools
from .progress import interactive
from .gpu import to_host as _host
from . import samplers, warned
from .threads import blas_threads, update_products

log = logging.getLogger("pgmdsl.train")


class TrainingDiverged(DSLError):
    """A parameter became NaN or infinite; the last good checkpoint is kept."""


class StopTraining(Exception):
    """Raised by a fit callback to end training after the current epoch (returning False does the same).

    The run ends as if that epoch were the last: its History row is kept, its
    checkpoint is written (so resume= continues from it), and fit returns the
    History; it is a signal, not an error, so fit never lets it escape.
    """


def nonfinite_parameters(compiled) -> list[str]:
    """The parameters holding a NaN or an infinity (one sum each: either makes it non-finite)."""
    xp = compiled.xp
    return [name for name, value in compiled.params.items() if not bool(xp.isfinite(xp.sum(value)))]


def diverged(compiled, bad, epoch: int, updates: int, good: dict, path, numerical: str = "") -> TrainingDiverged:
    """The error of a diverged epoch, the parameters restored to `good` (the end of epoch `epoch`, 0-based count).

    bad: what became NaN or infinite; path: the checkpoint, named when it exists (the last good one is kept).
    """
    for name, value in good.items():
        compiled.params[name] = value
    kept = f"; the last good checkpoint is {path}" if path and Path(path).exists() else ""
    said = f". numpy warned of {numerical}" if numerical else ""
    return TrainingDiverged(
        f"training diverged in epoch {epoch + 1} (by update {updates}): {', '.join(bad)} became NaN or "
        f"infinite; parameters restored to the end of epoch {epoch}{kept}{said}. Try a smaller lr.")


def resumed_training(compiled, path, options, workers: int | None) -> dict:
    """Continue a run from checkpoint `path`: its parameters go into `compiled`, and its training state is
    returned with the momentum as `compiled`'s arrays. Refused unless it continues this run: the same method,
    k, batch_size, seed and chains, and saved by the same kind of trainer (`workers`: the data-parallel workers
    resuming it, None for the serial trainer)."""
    contents = checkpoints.resumable(path, compiled)
    training = contents["training"]
    if training is None:
        raise DSLError(f"{path} holds no training state to resume from")
    saved = training["options"]
    for name in ("method", "k", "batch_size", "seed", "chains"):
        if saved.get(name) != getattr(options, name):
            raise DSLError(f"resume: {name} was {saved.get(name)!r} in {path}, now {getattr(options, name)!r}")
    streams = training.get("workers")
    if workers is None and streams is not None:
        raise DSLError(f"resume: {path} was saved by data-parallel training on {len(streams)} workers: resume it "
                       f"with fit(..., client=) on as many")
    if workers is not None and (not isinstance(streams, list) or len(streams) != workers):
        saved_by = "the serial trainer" if streams is None else f"data-parallel training on {len(streams)} workers"
        raise DSLError(f"resume: {path} was saved by {saved_by}, not by data-parallel training on {workers} workers")
    xp = compiled.xp
    for name, value in contents["params"].items():
        compiled.params[name] = xp.asarray(value, dtype=compiled.dtype)
    return {**training, "velocity": {k: xp.asarray(v, dtype=compiled.dtype) for k, v in training["velocity"].items()}}


class History(list):
    """Per-epoch metrics, one dict per epoch: epoch, lr, reconstruction, free_energy_gap (with validation rows),
    the monitored metrics, {train,validation}_label_accuracy and _label_log_likelihood (with labels=), the
    sampler's own (parallel tempering: swap_rate_t, the epoch's exchange rate between temperatures t and
    t + 1, 0 being inverse temperature 1, NaN where none was tried; swap_rate, their mean), seconds."""

    def column(self, name: str) -> list:
        """One metric over the epochs (None where an epoch lacks it)."""
        return [row.get(name) for row in self]

    def columns(self) -> list[str]:
        """Every metric any epoch has, in the order they first appear."""
        return list(dict.fromkeys(key for row in self for key in row))

    def to_csv(self, path) -> Path:
        """The history as a CSV file, one row per epoch and a column per metric (empty where an epoch lacks it)."""
        import csv

        path = Path(path)
        with open(path, "w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=self.columns())
            writer.writeheader()
            writer.writerows(self)
        return path

    def to_pandas(self):
        """The history as a pandas DataFrame indexed by epoch (pandas is not a dependency: install it to use this)."""
        try:
            import pandas
        except ImportError:
            raise DSLError("History.to_pandas needs pandas (pip install pandas); History.to_csv needs nothing") from None
        frame = pandas.DataFrame(list(self), columns=self.columns())
        return frame.set_index("epoch") if "epoch" in frame else frame


def observed_layers(compiled) -> list[str]:
    return [n for n, info in compiled.layers.items() if info["role"] in ("visible", "input")]


def as_data(compiled, data, layers=None) -> dict[str, np.ndarray]:
    """Training data as a dict of host arrays, one per observed layer (or per layer of `layers`), rows first."""
    observed = observed_layers(compiled) if layers is None else list(layers)
    if not isinstance(data, dict):
        if len(observed) != 1:
            raise DSLError(f"model {compiled.model.name} observes {', '.join(observed)}: pass data as a dict of arrays")
        data = {observed[0]: data}
    result = {}
    for name in observed:
        if name not in data:
            raise DSLError(f"the data lacks layer '{name}' (model {compiled.model.name} observes {', '.join(observed)})")
        array = np.asarray(data[name], dtype=compiled.dtype)
        shape = tuple(compiled.layers[name]["shape"])
        if array.shape[1:] != shape:
            try:
                array = array.reshape((len(array),) + shape)
            except ValueError:
                raise DSLError(f"layer '{name}' has shape {shape} per row; the data has shape {array.shape}") from None
        if not np.all(np.isfinite(array)):
            raise DSLError(f"the data for layer '{name}' contains NaN or infinite values")
        result[name] = array
    rows = {len(a) for a in result.values()}
    if len(rows) != 1:
        raise DSLError("the data's layers have different numbers of rows")
    extra = sorted(set(data) - set(observed_layers(compiled)))
    if extra:
        raise DSLError(f"the data has layers the model does not observe: {', '.join(extra)}")
    return result


def check_support(compiled, data: dict) -> None:
    """Refuse data (a dict from as_data) outside the support of each layer's unit type.

    Binary units take 0/1 or probabilities in [0, 1], spin units [-1, 1],
    one-hot rows sum to 1: anything else would train and evaluate a model
    of states it cannot take. The unit types (pgmdsl.units) know their support.
    """
    for name, values in data.items():
        unit = units.get(compiled.layers[name]["unit"])
        if unit is not None:
            unit.check_data(values, name)


class Trainer:
    def __init__(self, compiled, data, clamp=(), callbacks=(), validation=None, checkpoint=None, monitor=(),
                 mean_field_start=None, **given):
        self.c = compiled
        self.mean_field_start = mean_field_start  # (compiled, batch) -> initial latent means; None: all 0.5
        self.options = make_options(**given)
        self.data = as_data(compiled, data)
        self.rows = len(next(iter(self.data.values())))
        if self.rows == 0:
            raise DSLError("fit: the data has no rows")
        self._check_memory()
        self.validation = as_data(compiled, validation) if validation is not None else None
        self.clamp = tuple(clamp)
        for name in self.clamp:
            if name not in compiled.layers:
                raise DSLError(f"cannot clamp '{name}': model {compiled.model.name} has no such layer")
        self.callbacks = tuple(callbacks)
        self.monitor = _monitors(monitor)
        self.path = Path(checkpoint) if checkpoint else None
        self.rng = np.random.default_rng(self.options.seed)  # shuffles, chain starts; saved in checkpoints
        self.sampler = self.rng  # the generated samplers' generator (on the GPU: reseeded each epoch from rng)
        self.velocity = {k: compiled.xp.zeros_like(v) for k, v in compiled.params.items()}
        self.activity: dict[str, list] = {}
        self.epoch, self.updates = 0, 0
        self.history = History()
        self.latent = [n for n in compiled.kept if n not in self.data]
        self.transitions = hmc_transitions(compiled, self.options.hmc)
        self.gibbs = samplers.Gibbs(compiled, self.clamp, self._new_chains, self.transitions)
        self.phase = samplers.get(self.options.method)(self.gibbs, self.options)  # the negative phase and its state
        self._weight_cache = (None, None)
        self.biases = _hidden_biases(compiled) if self.options.sparsity_target is not None else {}
        if isinstance(self.options.sparsity_target, dict):
            unknown = sorted(set(self.options.sparsity_target) - set(self.biases))
            if unknown:
                raise DSLError(f"fit: sparsity_target names {', '.join(unknown)}, not a binary hidden layer with a bias "
                               f"in {compiled.model.name} (those: {', '.join(self.biases) or 'none'})")
        self.rates = self.options.parameter_rates([p.name for p in compiled.model.params])  # None: one rate
        if self.options.labels is not None:  # before any training: the objective and the label metrics need it
            _check_labels(compiled, self.options.labels)
        self.labelled = LabelGradient(compiled, self.options.labels) if self.options.objective != "generative" else None
        self.fused = None
        self.why_generic = fused_reason(compiled, self.options, self.clamp)
        if self.why_generic is None:
            self.fused = FusedStep(compiled, self.options, self._new_chains, self.rows)
        log.debug("%s: %s", compiled.model.name,
                  "the packed fused update" if self.fused else f"the generic update ({self.why_generic})")

    def _check_memory(self) -> None:
        """Refuse persistent chains and minibatches whose states would exceed the memory budget, before allocating.

        A minibatch is never larger than the rows, whatever batch_size says;
        persistent chains number batch_size unless chains= says otherwise, rows or not.
        """
        samplers.get(self.options.method).check_memory(self.c, self.options, min(self.options.batch_size, self.rows))

    @property
    def chains(self) -> dict | None:
        """The sampler's persistent chains in the form train/chains holds them (PCD's; None for the others)."""
        return self.phase.chains

    @chains.setter
    def chains(self, value: dict | None) -> None:
        self.phase.chains = value

    # ---- state ----
    def start(self) -> None:
        """Fresh start: data-dependent initialisers (logit_mean) see the training data, unless the model was trained
        already (a second fit continues from the first)."""
        if self.c.trained:
            return
        rng = np.random.default_rng(self.options.seed)
        for param in self.c.model.params:
            if param.init.kind == "logit_mean":
                self.c.params[param.name] = self.c.xp.asarray(initial_value(param, rng, self.c.dtype, self.data))

    def resume(self, path) -> None:
        training = resumed_training(self.c, path, self.options, workers=None)
        self.velocity, xp = training["velocity"], self.c.xp
        self.chains = {k: xp.asarray(v, dtype=self.c.dtype) for k, v in training["chains"].items()} or None
        self.phase.restore(training["sampler"], path)
        self.rng.bit_generator.state = training["rng"]
        self.epoch, self.updates = training["epoch"], training["updates"]
        self.activity = {k: np.asarray(v) for k, v in training["activity"].items()}
        self.history = History(training["history"])

    def save(self) -> None:
        training = {
            "options": self.options.as_dict(),
            "velocity": self.velocity,
            "chains": self.chains or {},
            "sampler": self.phase.state(),
            "rng": self.rng.bit_generator.state,
            "epoch": self.epoch,
            "updates": self.updates,
            "activity": {k: np.asarray(v).tolist() for k, v in self.activity.items()},
            "history": list(self.history),
        }
        checkpoints.save(self.path, self.c, training)

    # ---- the loop ----
    def run(self) -> History:
        from tqdm.auto import tqdm

        o = self.options
        quiet = o.verbose == 0 or not interactive()
        batches = -(-self.rows // o.batch_size)
        total = o.epochs * batches
        good = {k: v.copy() for k, v in self.c.params.items()}
        shown = set()  # the warnings shown so far: each once a run
        epochs = tqdm(range(self.epoch, o.epochs), desc=f"training {self.c.model.name}", unit="epoch",
                      initial=self.epoch, total=o.epochs, disable=quiet)
        with blas_threads(update_products(self.c, min(o.batch_size, self.rows) + (o.chains or o.batch_size))):
            return self._epochs(epochs, batches, total, good, shown, quiet)

    def _epochs(self, epochs, batches: int, total: int, good: dict, shown: set, quiet: bool) -> History:
        """The epochs of `run`: train, check, record, checkpoint, call back."""
        from tqdm.auto import tqdm

        o = self.options
        for epoch in epochs:
            started = time.perf_counter()
            permutation = self.rng.permutation(self.rows)
            self.sampler = self.c.random(int(self.rng.integers(2**63))) if self.c.xp is not np else self.rng
            shuffled = {k: self.c.xp.asarray(v[permutation]) for k, v in self.data.items()}  # one copy an epoch
            inner = tqdm(range(batches), leave=False, unit="batch", disable=quiet or o.verbose < 2)
            with warned.held() as caught:  # a diverging epoch's overflow warnings go into its message
                lr = (self._fused_epoch if self.fused else self._generic_epoch)(shuffled, inner, total)
                bad = nonfinite_parameters(self.c)
                metrics = {} if bad else self.metrics()
            if not bad and not np.isfinite(metrics["reconstruction"]):
                bad = ["the reconstruction error"]
            if bad:
                self._diverged(bad, epoch, good, warned.summary(caught))
            warned.release(caught, shown)
            self.epoch = epoch + 1
            good = {k: v.copy() for k, v in self.c.params.items()}
            row = {"epoch": self.epoch, "lr": lr, **metrics, **self.phase.metrics(),
                   "seconds": time.perf_counter() - started}
            self.history.append(row)
            log.info("epoch %d: %s", self.epoch, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)))
            epochs.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("epoch", "lr", "seconds")})
            saved = bool(self.path) and (self.epoch % o.checkpoint_every == 0 or self.epoch == o.epochs)
            if saved:
                self.save()
            if called_back(self.callbacks, self.c, row):
                if self.path and not saved:  # the epoch the run stopped at is the one to resume from
                    self.save()
                log.info("epoch %d: a callback stopped training", self.epoch)
                epochs.close()
                break
        return self.history

    def _generic_epoch(self, shuffled: dict, batches, total: int) -> float:
        """One epoch of `update` over the generated module; returns the last learning rate."""
        o, lr = self.options, self.options.base_lr
        for b in batches:
            start = b * o.batch_size
            lr = o.learning_rate(self.updates, total)
            self.update({k: v[start:start + o.batch_size] for k, v in shuffled.items()}, lr)
            self.updates += 1
        return lr

    def _fused_epoch(self, shuffled: dict, batches, total: int) -> float:
        """One epoch of packed updates (runtime.fused); the parameters, momentum and chains come back after it."""
        o, fused, xp = self.options, self.fused, self.c.xp
        fused.load(self.c.params, self.velocity, self.chains)
        rows = xp.concatenate([shuffled[s.layer].reshape(self.rows, -1) for s in fused.layout.observed], axis=1) \
            if len(fused.layout.observed) > 1 else shuffled[fused.layout.observed[0].layer].reshape(self.rows, -1)
        lr = o.base_lr
        for b in batches:
            start = b * o.batch_size
            lr = o.learning_rate(self.updates, total)
            fused.update(rows[start:start + o.batch_size], lr, self.sampler)
            self.updates += 1
        self.chains = fused.store(self.c.params, self.velocity) or self.chains
        return lr

    def _diverged(self, bad, epoch, good, numerical: str) -> None:
        """Restore the last good parameters and stop with one line: what broke, what numpy warned of, what is kept.

        numerical: warned.summary of the epoch's held warnings ("" for none).
        """
        raise diverged(self.c, bad, epoch, self.updates, good, self.path, numerical)

    def update(self, batch: dict, lr: float) -> None:
        """One step along the objective: theta += lr (data - model statistics), then decay, momentum, sparsity."""
        o, xp = self.options, self.c.xp
        if xp is not np:  # rows handed in from the host (partial_fit)
            batch = {k: xp.asarray(v) for k, v in batch.items()}
        if o.objective == "discriminative":
            steps, positive = self.labelled.steps(batch, lr)
        else:
            weight = o.generative_weight if o.objective == "hybrid" else 1.0
            steps, positive = self.generative_steps(batch, lr * weight)
            if o.objective == "hybrid":
                conditional, _ = self.labelled.steps(batch, lr)
                steps = {name: steps[name] + conditional[name] for name in steps}
        self._apply(steps, lr)
        if self.biases:
            self.sparsity(positive, lr)

    def generative_steps(self, batch: dict, lr: float) -> tuple[dict, dict]:
        """(lr (data - model statistics) with the sampler's model phase, the data phase's state)."""
        c, xp = self.c, self.c.xp
        rows = len(next(iter(batch.values())))
        positive = self.infer(batch) if self.latent else dict(batch)
        negative = self.phase.model_phase(positive, rows, self.sampler)  # sets both phases' summed-out means
        chains = len(next(iter(negative.values())))
        weights = self._weights(rows, chains, lr)
        if c.module.STATISTICS_BY_PHASE:  # each phase's patch matrices are the ones its fields built
            data = c.module.statistics(c.params, positive, weights[:rows])
            model = c.module.statistics(c.params, negative, weights[rows:])
            return {name: data[name] + model[name] for name in data}, positive
        # one pass for both phases: the model rows weigh -lr/chains, the data rows lr/rows
        both = {k: xp.concatenate((v, negative[k])) for k, v in positive.items()}
        return c.module.statistics(c.params, both, weights), positive

    def _apply(self, steps: dict, lr: float) -> None:
        apply_steps(self.c, self.options, steps, self.velocity, self.rates, lr, self.epoch)

    def _weights(self, rows: int, chains: int, lr: float):
        key = (rows, chains, lr)
        if self._weight_cache[0] != key:
            xp = self.c.xp
            weights = xp.concatenate((xp.full(rows, lr / rows, dtype=self.c.dtype),
                                      xp.full(chains, -lr / chains, dtype=self.c.dtype)))
            self._weight_cache = (key, weights)
        return self._weight_cache[1]

    def infer(self, batch: dict) -> dict:
        """Data phase for latent layers the compiler keeps: mean-field (block) or Gibbs (coupled units)."""
        state = dict(batch)
        if not self.latent:
            return state
        c = self.c
        coupled = any(c.layers[n]["update"] == "unitwise" for n in self.latent)
        rows = len(next(iter(batch.values())))
        started = self.mean_field_start(c, batch) if self.mean_field_start is not None else {}
        for name in self.latent:
            state[name] = started[name] if name in started else \
                c.xp.full((rows,) + tuple(c.layers[name]["shape"]), 0.5, dtype=c.dtype)
        for _ in range(self.options.mean_field_steps):
            for name in c.marginalised:
                state[name] = c.module_mean(name, state)
            for name in self.latent:
                state[name] = c.module_sample(name, state, self.sampler) if coupled else c.module_mean(name, state)
        return state

    def _new_chains(self, count: int) -> dict:
        from .sampling import initial_state

        rows = self.rng.integers(0, self.rows, count)
        given = {k: self.c.xp.asarray(v[rows]) for k, v in self.data.items()}
        state = initial_state(self.c, count, self.rng, given)
        return {k: v for k, v in state.items() if k not in self.c.marginalised}

    def sparsity(self, positive: dict, lr: float) -> None:
        """Lee, Ekanadham and Ng (2008): push each hidden unit's mean activity towards the target.

        A pooling layer (Lee et al. 2009's target on the pooling units) is pushed through its detectors' bias,
        its activity the block sums of their means; it takes a target only when named (sparsity_target={"p": ..}),
        a single target being the detectors'."""
        o, xp = self.options, self.c.xp
        pools = pooling_layers(self.c)
        for layer, (bias, axes) in self.biases.items():
            target = o.sparsity_of(layer)
            if target is None or (layer in pools and not isinstance(o.sparsity_target, dict)):
                continue
            means = with_pools(self.c, dict(positive))[layer] if layer in pools else positive[layer]
            activity = xp.mean(means, axis=(0,) + axes)
            running = self.activity.get(layer)
            running = activity if running is None else o.sparsity_decay * xp.asarray(running) + (1 - o.sparsity_decay) * activity
            self.activity[layer] = running
            rate = lr if self.rates is None else lr * self.rates[bias]
            self.c.params[bias] += rate * o.sparsity_cost * (target - running)

    # ---- monitoring ----
    def metrics(self) -> dict:
        c = self.c
        sample = {k: v[: min(self.rows, 1000)] for k, v in self.data.items()}
        result = {"reconstruction": float(reconstruction_error(c, sample))}
        for name, transition in self.transitions.items():  # hybrid Monte Carlo's last acceptance and step size
            if transition.acceptance is not None:
                result[f"hmc_acceptance_{name}"] = transition.acceptance
            result[f"hmc_step_size_{name}"] = transition.step_size
        result.update(held_out_metrics(c, sample, self.validation, self.monitor))
        if self.options.labels:
            result.update(self._label_metrics(sample))
        return result

    def _label_metrics(self, sample: dict) -> dict:
        """Accuracy and mean log p(label | rest), exact, on the training sample (and validation rows if given)."""
        result = {}
        for label, rows in monitoring_sets(sample, self.validation, 1000).items():
            for name, value in label_metrics(self.c, rows, self.options.labels).items():
                result[f"{label}_label_{name}"] = value
        return result



def called_back(callbacks, compiled, row: dict) -> bool:
    """Call every callback with the epoch's row; whether one asked to stop (returned False or raised
    StopTraining). Each still sees the epoch, so a progress printer after a stopping callback prints it."""
    stop = False
    for callback in callbacks:
        try:
            stop |= callback(compiled, row) is False
        except StopTraining:
            stop = True
    return stop


def monitoring_sets(sample: dict, validation: dict | None, rows: int) -> dict:
    """{"train": sample, "validation": its first `rows` rows when given}: what the monitors score."""
    sets = {"train": sample}
    if validation is not None:
        sets["validation"] = {k: v[:rows] for k, v in validation.items()}
    return sets


def held_out_metrics(compiled, sample: dict, validation: dict | None, monitor: dict) -> dict:
    """The free-energy gap (validation rows given) and the mean of each monitor= function on the training sample
    and the validation rows, as {set}_{name}: what every trainer reports each epoch beside its own figures."""
    c, result = compiled, {}
    if validation is not None and set(c.kept) <= set(sample):
        train = float(c.xp.mean(c.module.free_energy(c.params, {k: c.xp.asarray(v) for k, v in sample.items()})))
        held = {k: c.xp.asarray(v[:1000]) for k, v in validation.items()}
        result["free_energy_gap"] = float(c.xp.mean(c.module.free_energy(c.params, held))) - train
    for label, rows in monitoring_sets({k: v[:500] for k, v in sample.items()}, validation, 500).items() \
            if monitor else ():
        for name, measure in monitor.items():
            result[f"{label}_{name}"] = float(np.mean(measure(c, rows)))
    return result


def apply_steps(compiled, options, steps: dict, velocity: dict, rates, lr: float, epoch: int) -> None:
    """theta += step, with L2 decay on weight matrices, per-parameter rates, the epoch's momentum (`velocity`
    updated in place) and the parameters' constraints: every trainer's last move (data-parallel ones too)."""
    c, o, xp = compiled, options, compiled.xp
    momentum = o.momentum_at(epoch)
    for param in c.model.params:
        name = param.name
        step = xp.asarray(steps[name], dtype=c.dtype)
        if o.weight_decay and len(param.shape) >= 2:
            step = step - (lr * o.weight_decay) * c.params[name]
        if rates is not None:
            step = rates[name] * step
        value = c.params[name]
        if momentum:
            velocity[name] *= momentum
            velocity[name] += step
            step = velocity[name]
        value += step
        if param.constraints:
            c.params[name] = constrain(param, value, xp)


def reconstruction_error(compiled, data: dict) -> float:
    """Mean squared difference between the data and its one-step mean-field reconstruction."""
    reconstructed = reconstruct(compiled, data)
    visible = [n for n in data if compiled.layers[n]["role"] == "visible"]
    return float(np.mean([np.mean((np.asarray(_host(reconstructed[n])) - data[n]) ** 2) for n in visible]))


def reconstruct(compiled, data: dict) -> dict:
    """Observed layers -> hidden means -> visible means (inputs stay clamped)."""
    xp = compiled.xp
    state = {k: xp.asarray(v, dtype=compiled.dtype) for k, v in data.items()}
    trainer_like = _Inference(compiled, state)
    hidden = trainer_like.latent_means()
    result = {}
    for name in data:
        if compiled.layers[name]["role"] != "visible":
            continue
        given = {**state, **hidden}
        given.pop(name)
        result[name] = compiled.module_mean(name, {**given, name: state[name]})
    return result


class _Inference:
    """Mean-field over every latent layer given the observed ones."""

    def __init__(self, compiled, state: dict, steps: int = 10):
        self.c, self.state, self.steps = compiled, state, steps

    def latent_means(self) -> dict:
        c = self.c
        from .recipes.dbm import start_means

        latent = [n for n, info in c.layers.items() if info["role"] == "hidden" and n not in self.state]
        rows = len(next(iter(self.state.values())))
        state = dict(self.state)
        started = start_means(c, self.state) if len(latent) > 1 else {}
        for name in latent:
            state[name] = started[name] if name in started else \
                c.xp.full((rows,) + tuple(c.layers[name]["shape"]), 0.5, dtype=c.dtype)
        steps = 1 if set(latent) <= set(c.marginalised) else self.steps
        for _ in range(steps):
            for name in latent:
                state[name] = c.module_mean(name, state)
        return {n: state[n] for n in latent}


def _hidden_biases(compiled) -> dict:
    """For each binary hidden layer, the parameter that is its bias (a term -b[k]*h[k, ...]) and the axes b does not index."""
    from ..ir import expr as ir

    found = {}
    for term in compiled.model.terms:
        for summand in term.summands:
            factors, negative = _signed_factors(summand.expr)
            if not negative or len(factors) != 2 or not all(isinstance(f, ir.Ref) for f in factors):
                continue
            refs = {f.kind: f for f in factors}
            if set(refs) != {"param", "layer"}:
                continue
            layer, param = refs["layer"], refs["param"]
            info = compiled.layers[layer.name]
            if info["role"] != "hidden" or units.get(info["unit"]).values != (0, 1):  # a sparsity target is a rate of 1s
                continue
            names = [a.plain for a in layer.indices]
            bias_names = [a.plain for a in param.indices]
            if None in names or None in bias_names or names[: len(bias_names)] != bias_names:
                continue
            found[layer.name] = (param.name, tuple(range(1 + len(bias_names), 1 + len(names))))
    for name, (detector, _) in pooling_layers(compiled).items():  # a pooling layer moves with its detectors' bias
        if detector in found:
            found[name] = found[detector]
    return found


def _signed_factors(expr) -> tuple[list, bool]:
    """The factors of a product and whether its sign is negative: -b[k]*h[k] parses as (-b[k])*h[k] in a term
    line and as -(b[k]*h[k]) in a sum, and both are a bias."""
    from ..ir import expr as ir

    if isinstance(expr, ir.Neg):
        factors, negative = _signed_factors(expr.operand)
        return factors, not negative
    if isinstance(expr, ir.Mul):
        factors, negative = [], False
        for factor in expr.factors:
            inner, sign = _signed_factors(factor)
            factors += inner
            negative ^= sign
        return factors, negative
    return [expr], False


def _monitors(monitor) -> dict:
    """monitor=: {name: function(compiled, rows) -> a value per row}, or functions named by their __name__.

    The evaluation passes its measures in (pgmdsl.evaluate.pseudo_log_likelihood,
    exact_log_likelihood, ...): the trainer runs before the evaluation stage and never imports it.
    """
    given = monitor if isinstance(monitor, dict) else {getattr(f, "__name__", f): f for f in
                                                       ((monitor,) if isinstance(monitor, str) else monitor)}
    for name, measure in given.items():
        if not callable(measure):
            raise DSLError(f"fit: unknown monitor {measure!r}: a monitor is a function of (compiled, rows) giving a "
                           "value per row, e.g. pgmdsl.evaluate.pseudo_log_likelihood or exact_log_likelihood")
    return dict(given)


def _check_labels(compiled, layer: str) -> None:
    """fit(labels=...) names a layer whose p(layer | rest) can be computed: checked before any training."""
    try:
        label_states(compiled, layer)
    except DSLError as error:
        raise DSLError(f"fit: labels={layer!r}: {error.message}") from None
